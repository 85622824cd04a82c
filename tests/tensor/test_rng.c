#include "helpers.h"
TCase *tcase_rng(void) { return nd_test_case("rng"); }
