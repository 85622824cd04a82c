#include "helpers.h"
TCase *tcase_errors(void) { return nd_test_case("errors"); }
