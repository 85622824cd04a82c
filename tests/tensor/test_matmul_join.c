#include "helpers.h"
TCase *tcase_matmul_join(void) { return nd_test_case("matmul_join"); }
