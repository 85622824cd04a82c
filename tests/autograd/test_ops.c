#include "helpers.h"
TCase *tcase_grad_elementwise(void) { return nd_test_case("grad_elementwise"); }
TCase *tcase_grad_reduce(void) { return nd_test_case("grad_reduce"); }
TCase *tcase_grad_shape(void) { return nd_test_case("grad_shape"); }
