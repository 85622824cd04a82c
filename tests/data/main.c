/* The data layer's Check suite. */
#include <stdlib.h>

#include "helpers.h"

TCase *tcase_checksum(void);
TCase *tcase_inflate(void);
TCase *tcase_png(void);
TCase *tcase_plot(void);
TCase *tcase_npy(void);
TCase *tcase_idx(void);
TCase *tcase_cifar(void);
TCase *tcase_csv(void);
TCase *tcase_fashion(void);

int main(void) {
    Suite *s = suite_create("data");
    suite_add_tcase(s, tcase_checksum());
    suite_add_tcase(s, tcase_inflate());
    suite_add_tcase(s, tcase_png());
    suite_add_tcase(s, tcase_plot());
    suite_add_tcase(s, tcase_npy());
    suite_add_tcase(s, tcase_idx());
    suite_add_tcase(s, tcase_cifar());
    suite_add_tcase(s, tcase_csv());
    suite_add_tcase(s, tcase_fashion());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
