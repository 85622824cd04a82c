#include "helpers.h"
TCase *tcase_broadcast(void) { return nd_test_case("broadcast"); }
TCase *tcase_elementwise(void) { return nd_test_case("elementwise"); }
