/*
 * fuzz_unpack_key.h — the fixed key pairs of fuzz_unpack and of the program
 * that wrote its seed envelopes (gen_unpack_seeds.c): Indy 32-byte seeds,
 * so both sides derive the same ed25519 keys.
 */
#ifndef ORDO_FUZZ_UNPACK_KEY_H
#define ORDO_FUZZ_UNPACK_KEY_H

/* The key fuzz_unpack opens envelopes with. */
#define FUZZ_UNPACK_RECIPIENT_SEED "ordo-fuzz-unpack-recipient-key-1"
/* The authcrypt sender of the seed envelopes. */
#define FUZZ_UNPACK_SENDER_SEED "ordo-fuzz-unpack-sender-key-0001"
/* A recipient the fuzzer has no key for. */
#define FUZZ_UNPACK_OTHER_SEED "ordo-fuzz-unpack-other-key-00001"

#endif /* ORDO_FUZZ_UNPACK_KEY_H */
