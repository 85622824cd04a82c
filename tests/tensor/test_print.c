#include "helpers.h"
TCase *tcase_print(void) { return nd_test_case("print"); }
