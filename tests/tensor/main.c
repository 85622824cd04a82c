/* The tensor layer's Check suite. */
#include <stdlib.h>

#include "helpers.h"

TCase *tcase_views(void);
TCase *tcase_broadcast(void);
TCase *tcase_elementwise(void);
TCase *tcase_reduce(void);
TCase *tcase_matmul_join(void);
TCase *tcase_rng(void);
TCase *tcase_errors(void);
TCase *tcase_print(void);
TCase *tcase_memory(void);
TCase *tcase_kernels(void);
TCase *tcase_conv(void);
TCase *tcase_conv_random(void);
TCase *tcase_matmul_random(void);
TCase *tcase_softmax_random(void);
TCase *tcase_vmath(void);
TCase *tcase_safetensors(void);
TCase *tcase_file(void);

int main(void) {
    Suite *s = suite_create("tensor");
    suite_add_tcase(s, tcase_views());
    suite_add_tcase(s, tcase_broadcast());
    suite_add_tcase(s, tcase_elementwise());
    suite_add_tcase(s, tcase_reduce());
    suite_add_tcase(s, tcase_matmul_join());
    suite_add_tcase(s, tcase_rng());
    suite_add_tcase(s, tcase_errors());
    suite_add_tcase(s, tcase_print());
    suite_add_tcase(s, tcase_memory());
    suite_add_tcase(s, tcase_kernels());
    suite_add_tcase(s, tcase_conv());
    suite_add_tcase(s, tcase_conv_random());
    suite_add_tcase(s, tcase_matmul_random());
    suite_add_tcase(s, tcase_softmax_random());
    suite_add_tcase(s, tcase_vmath());
    suite_add_tcase(s, tcase_safetensors());
    suite_add_tcase(s, tcase_file());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
