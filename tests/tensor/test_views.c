#include "helpers.h"
TCase *tcase_views(void) { return nd_test_case("views"); }
