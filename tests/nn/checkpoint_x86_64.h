/* A checkpoint as nd_checkpoint_save wrote it on x86-64 (little-endian),
 * for tests/nn/test_checkpoint.c: the header's length (u64), the JSON
 * header padded with spaces to a multiple of 8 bytes, then the floats. */
static const unsigned char checkpoint_x86_64[1000] =
    "\x50\x03\x00\x00\x00\x00\x00\x00" /* 848 */
    "{\"__metadata__\":{\"format\":\"nanodiff checkpoint 1\","
    "\"step\":\"1234567890123\",\"optimizer.kind\":\"adamw\","
    "\"optimizer.steps\":\"77\",\"ema.decay\":\"0.999\","
    "\"ema.updates\":\"76\",\"rng.seed\":\"81985529216486895\","
    "\"rng.stream\":\"3735928559\",\"rng.offset\":\"18364758544493064720\","
    "\"config\":\"x86-64\"},"
    "\"weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
    "\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
    "\"optimizer.weight.exp_avg\":{\"dtype\":\"F32\",\"shape\":[3,2],"
    "\"data_offsets\":[36,60]},"
    "\"optimizer.weight.exp_avg_sq\":{\"dtype\":\"F32\","
    "\"shape\":[3,2],\"data_offsets\":[60,84]},"
    "\"optimizer.bias.exp_avg\":{\"dtype\":\"F32\",\"shape\":[3],"
    "\"data_offsets\":[84,96]},"
    "\"optimizer.bias.exp_avg_sq\":{\"dtype\":\"F32\",\"shape\":[3],"
    "\"data_offsets\":[96,108]},"
    "\"ema.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[108,132]},"
    "\"ema.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[132,144]}}      "
    "\xb1\x79\x37\x3e\x72\x8e\xe6\xbf\x33\xa3\x95\x3f\xf4\xb7\x44\xbf"
    "\xb5\xcc\xf3\x3e\x76\xe1\xa2\xbe\x44\xbf\x9a\xbe\x05\xd4\x49\x3e"
    "\xc6\xe8\xf8\xbf\xd7\x04\xfe\x3e\x98\x19\xad\xbe\x59\x2e\x5c\x3e"
    "\x1a\x43\x0b\xbe\xdb\x57\xba\x3f\x9c\x6c\x69\xbf\x6a\x4a\x61\xbf"
    "\x2b\x5f\x10\x3f\xec\x73\xbf\xbe\xad\x88\x6e\x3e\x6e\x9d\x1d\xbe"
    "\x2f\xb2\xcc\x3f\xfd\x8f\xc4\x3f\xbe\xa4\x73\xbf\x7f\xb9\x22\x3f"
    "\x90\xd5\x27\xbe\x51\xea\xd6\x3f\x12\xff\x85\xbf\x23\x1b\x8b\x3e"
    "\xe4\x2f\x3a\xbe\xa5\x44\xe9\x3f\x66\x59\x98\xbf\x27\x6e\x47\x3f"
    "\xe8\x82\xf6\xbe\xb6\x60\xee\xbe\x77\x75\x9d\x3e\x38\x8a\x4c\xbe";
