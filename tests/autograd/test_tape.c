#include "helpers.h"
TCase *tcase_tape(void) { return nd_test_case("tape"); }
