#include "helpers.h"
TCase *tcase_reduce(void) { return nd_test_case("reduce"); }
