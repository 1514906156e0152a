/*
 * crypto.h — ordo's cryptography module: the primitives commands are built
 * from. Not installed; other modules reach crypto only through this header.
 *
 * Every function here is synchronous and thread-safe: it runs wherever it is
 * called, normally inside a stage on the cheap class (signatures) or the heavy
 * class (prime search). The long ones poll ordo_op_cancelled() so that
 * ordo_op_cancel() stops them at their next checkpoint.
 *
 * Results are ORDO_OK or a code from ordo_err: ORDO_E_INVAL for arguments the
 * caller got wrong, ORDO_E_CANCELED when the running op was asked to stop,
 * ORDO_E_CRYPTO when the library underneath failed, ORDO_E_NOMEM when an
 * allocation failed. Input that comes from outside (keys, seeds, envelopes,
 * proofs) has its own codes: ORDO_E_BAD_KEY for a malformed key or seed,
 * ORDO_E_UNPACK for an envelope that cannot be opened, ORDO_E_PROOF for a
 * proof that does not verify.
 *
 * Functions that fail leave nothing behind: output pointers are set to NULL
 * (or output buffers wiped) and everything allocated on the way is freed.
 *
 * Secrets handed out (private keys, the primes of a key) are the caller's to
 * wipe: ordo__crypto_memzero() for buffers, ordo__free_secret() for
 * strings, BN_clear_free() for BIGNUMs.
 */
#ifndef ORDO_CRYPTO_H
#define ORDO_CRYPTO_H

#include "base/base.h"
#include "ordo.h"

#include <openssl/types.h> /* BIGNUM, without the whole of bn.h */
#include <stddef.h>

/* ------------------------------------------------------------------------ */
/* Module                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Initialise the libraries underneath (libsodium) once per process. Every
 * entry point below calls it, so callers need not; it is exported for modules
 * that use libsodium directly (the wallet). ORDO_E_CRYPTO if libsodium cannot
 * start (no usable random source). Any thread, any number of times.
 */
int ordo__crypto_init(void);

/* Wipe len bytes at p in a way the compiler may not drop. NULL/0 accepted. */
void ordo__crypto_memzero(void *p, size_t len);

/* Secret strings: ordo__free_secret (base/base.h) wipes and frees them. */

/* ------------------------------------------------------------------------ */
/* Safe primes (OpenSSL BIGNUM)                                              */
/* ------------------------------------------------------------------------ */

/* Accepted sizes. Below 16 bits there are too few safe primes to be useful;
 * above 8192 a search takes hours. */
#define ORDO__CRYPTO_PRIME_MIN_BITS 16
#define ORDO__CRYPTO_PRIME_MAX_BITS 8192

/*
 * A random safe prime p of exactly `bits` bits: p and (p-1)/2 both prime.
 * This is the seconds-long search of CL key generation (1025 bits there), so
 * it belongs on the heavy class. It checks ordo_op_cancelled() after every
 * candidate and every primality round, and returns ORDO_E_CANCELED when asked
 * to stop (outside a stage it never stops early).
 *
 * On ORDO_OK *out is a new BIGNUM the caller frees with BN_clear_free (it is
 * a secret factor when it becomes part of a key); on error *out is NULL.
 * ORDO_E_INVAL for bits outside [MIN_BITS, MAX_BITS] or out == NULL.
 */
int ordo__crypto_safe_prime_bn(int bits, BIGNUM **out);

/*
 * The same, as a decimal string in *out_decimal (malloc'd; free it with
 * ordo__free_secret). *out_decimal is NULL on error.
 */
int ordo__crypto_safe_prime(int bits, char **out_decimal);

/* ------------------------------------------------------------------------ */
/* Ed25519 (libsodium)                                                       */
/* ------------------------------------------------------------------------ */

#define ORDO__ED25519_SEED_BYTES 32
#define ORDO__ED25519_PUBLIC_BYTES 32
/* The secret key is seed || public key, libsodium's layout. */
#define ORDO__ED25519_SECRET_BYTES 64
#define ORDO__ED25519_SIG_BYTES 64

/*
 * A key pair: derived from the 32-byte seed when seed is non-NULL (the same
 * seed always gives the same keys: Indy's seeded DIDs), random otherwise.
 * sk is secret; wipe it with ordo__crypto_memzero when done.
 * ORDO_E_INVAL for NULL pk/sk, ORDO_E_CRYPTO if libsodium fails.
 */
int ordo__crypto_ed25519_keypair(const unsigned char *seed,
                                 unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
                                 unsigned char sk[ORDO__ED25519_SECRET_BYTES]);

/*
 * The detached signature of len bytes at msg (msg may be NULL when len is 0).
 * ORDO_E_INVAL for NULL arguments, ORDO_E_CRYPTO if libsodium fails.
 */
int ordo__crypto_ed25519_sign(
    const unsigned char sk[ORDO__ED25519_SECRET_BYTES], const void *msg,
    size_t len, unsigned char sig[ORDO__ED25519_SIG_BYTES]);

/*
 * Check sig over msg with pk. A wrong signature is an answer, not an error:
 * the call returns ORDO_OK and sets *valid to 0 (1 when it verifies), so a
 * caller can tell "forged" from "could not check". ORDO_E_INVAL for NULL
 * arguments, ORDO_E_CRYPTO if libsodium cannot start.
 */
int ordo__crypto_ed25519_verify(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES], const void *msg,
    size_t len, const unsigned char sig[ORDO__ED25519_SIG_BYTES], int *valid);

/* ------------------------------------------------------------------------ */
/* Encodings (encoding.c)                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The decoders are strict: they take the whole NUL-terminated string, no
 * whitespace, and fail with ORDO_E_INVAL on anything else. On failure they
 * also record a message on the calling thread (ordo_last_error_message():
 * "base58: invalid character at offset 7", "base58: decodes to more than 32
 * bytes", ...) for the caller to pass on; the message gives positions, never
 * the characters, because the text may be a secret. Callers that parse keys
 * map ORDO_E_INVAL to ORDO_E_BAD_KEY.
 *
 * Base58 and hex are for keys and other short values. Base58 (the Bitcoin
 * alphabet, used by Indy for verkeys and DIDs) is quadratic in the length and
 * not constant-time; hex and base64url go through libsodium's constant-time
 * codecs, so they may carry secrets.
 */

/* Bytes of the base58 text of n input bytes, NUL included (an upper bound:
 * log(256)/log(58) < 1.38, one more for rounding, one for the NUL). */
#define ORDO__BASE58_ENCODED_SIZE(n) ((n)*138 / 100 + 2)

/*
 * Base58 (Bitcoin alphabet) of len bytes at in, NUL-terminated in out.
 * Each leading zero byte becomes one leading '1'. out_size must be at least
 * ORDO__BASE58_ENCODED_SIZE(len); ORDO_E_INVAL otherwise, or for a NULL
 * argument (in may be NULL when len is 0).
 */
int ordo__crypto_base58_encode(const void *in, size_t len, char *out,
                               size_t out_size);

/*
 * Decode base58 text. On entry *out_len is the capacity of out; on ORDO_OK it
 * is the number of bytes written. ORDO_E_INVAL for a character outside the
 * alphabet (0, O, I, l and anything not alphanumeric) or a value that does
 * not fit in the capacity; out is then wiped and *out_len set to 0.
 */
int ordo__crypto_base58_decode(const char *in, unsigned char *out,
                               size_t *out_len);

/* Bytes of the hex text of n input bytes, NUL included. */
#define ORDO__HEX_ENCODED_SIZE(n) ((n)*2 + 1)

/* Lower-case hex of len bytes, NUL-terminated in out; out_size at least
 * ORDO__HEX_ENCODED_SIZE(len), ORDO_E_INVAL otherwise. */
int ordo__crypto_hex_encode(const void *in, size_t len, char *out,
                            size_t out_size);

/*
 * Decode hex (either case). *out_len: capacity in, bytes written out.
 * ORDO_E_INVAL for an odd number of digits, a non-hex character, or more
 * bytes than the capacity; out is then wiped and *out_len set to 0.
 */
int ordo__crypto_hex_decode(const char *in, unsigned char *out,
                            size_t *out_len);

/*
 * Base64url (RFC 4648 section 5) without padding, as Aries envelopes use it.
 * *out is a new NUL-terminated string the caller frees with free() (or
 * ordo__free_secret when in was secret); NULL on error.
 * ORDO_E_INVAL for NULL arguments, ORDO_E_NOMEM.
 */
int ordo__crypto_b64url_encode(const void *in, size_t len, char **out);

/*
 * Decode base64url, with or without '=' padding (other implementations of
 * the envelope format pad). *out is a new buffer of *out_len bytes, plus a
 * NUL byte after them so text can be read as a string; the caller frees it
 * with free() (wiping it first if it is secret). ORDO_E_INVAL for characters
 * outside the URL-safe alphabet, wrong padding, or non-zero trailing bits
 * (so each value has exactly one encoding); ORDO_E_NOMEM. On error *out is
 * NULL and *out_len 0.
 */
int ordo__crypto_b64url_decode(const char *in, unsigned char **out,
                               size_t *out_len);

/*
 * obj[key] = text, where text is ASCII (the decimal digits of a BIGNUM, the
 * base64url above), so jansson's UTF-8 check is skipped. text stays the
 * caller's. ORDO_OK, or ORDO_E_NOMEM. How cl.c and pack.c put numbers and
 * bytes into the JSON they make.
 */
struct json_t;
int ordo__crypto_json_set_ascii(struct json_t *obj, const char *key,
                                const char *text);

/* ------------------------------------------------------------------------ */
/* Hashes (hash.c)                                                           */
/* ------------------------------------------------------------------------ */

#define ORDO__SHA256_BYTES 32
#define ORDO__SHA512_BYTES 64

/* SHA-256 / SHA-512 of len bytes at msg (NULL allowed when len is 0).
 * ORDO_E_INVAL for a NULL out, ORDO_E_CRYPTO if libsodium cannot start. */
int ordo__crypto_sha256(const void *msg, size_t len,
                        unsigned char out[ORDO__SHA256_BYTES]);
int ordo__crypto_sha512(const void *msg, size_t len,
                        unsigned char out[ORDO__SHA512_BYTES]);

/* ------------------------------------------------------------------------ */
/* Indy DIDs, verkeys and seeds (did.c)                                      */
/* ------------------------------------------------------------------------ */

/* Buffer sizes, NUL included: a DID is base58 of 16 bytes (at most 22
 * characters), a verkey base58 of 32 (at most 44). */
#define ORDO__DID_SIZE ORDO__BASE58_ENCODED_SIZE(16)
#define ORDO__VERKEY_SIZE ORDO__BASE58_ENCODED_SIZE(ORDO__ED25519_PUBLIC_BYTES)

/* The Indy DID of an ed25519 public key: base58 of its first 16 bytes.
 * ORDO_E_INVAL for NULL arguments. */
int ordo__crypto_did_from_verkey(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
    char out[ORDO__DID_SIZE]);

/* The verkey string of an ed25519 public key: base58 of its 32 bytes.
 * ORDO_E_INVAL for NULL arguments. */
int ordo__crypto_verkey_encode(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
    char out[ORDO__VERKEY_SIZE]);

/*
 * Parse a verkey string back into 32 bytes. Indy's ":ed25519" crypto-type
 * suffix is accepted; abbreviated verkeys ("~...", relative to a DID) are
 * not. ORDO_E_BAD_KEY for anything that is not base58 of exactly 32 bytes
 * (pk is then wiped), ORDO_E_INVAL for NULL arguments.
 */
int ordo__crypto_verkey_decode(const char *verkey,
                               unsigned char pk[ORDO__ED25519_PUBLIC_BYTES]);

/*
 * An Indy seed string to the 32-byte ed25519 seed, by length as libindy
 * does: 32 bytes are used as they are ("000000000000000000000000Trustee1");
 * 64 characters are hex; 44 characters ending in '=' (or 43 without padding)
 * are base64, standard or URL-safe alphabet, of 32 bytes. ORDO_E_BAD_KEY for
 * anything else (out is then wiped), ORDO_E_INVAL for NULL arguments. The
 * seed is secret: wipe out when done.
 */
int ordo__crypto_seed_parse(const char *seed,
                            unsigned char out[ORDO__ED25519_SEED_BYTES]);

/*
 * A new DID: ed25519 key pair from an Indy seed string (NULL: random), its
 * DID and its verkey string. sk is secret (wipe with ordo__crypto_memzero).
 * Errors as ordo__crypto_seed_parse and ordo__crypto_ed25519_keypair; on
 * error sk is wiped and did/verkey are empty strings.
 */
int ordo__crypto_did_create(const char *seed,
                            unsigned char sk[ORDO__ED25519_SECRET_BYTES],
                            char did[ORDO__DID_SIZE],
                            char verkey[ORDO__VERKEY_SIZE]);

/* ------------------------------------------------------------------------ */
/* secp256k1 (libsecp256k1; secp256k1.c)                                     */
/* ------------------------------------------------------------------------ */

/*
 * Sawtooth's keys and signatures: 32-byte secret keys, 33-byte compressed
 * public keys (66 hex characters), ECDSA over a 32-byte digest (SHA-256 of
 * the signed bytes) with deterministic nonces (RFC 6979), 64-byte compact
 * signatures r || s with low S. Verification rejects high-S signatures, as
 * Sawtooth's validator does. One library context, made and randomised once
 * per process (blinding against side channels), is shared read-only.
 */
#define ORDO__SECP256K1_SECRET_BYTES 32
#define ORDO__SECP256K1_PUBLIC_BYTES 33
#define ORDO__SECP256K1_DIGEST_BYTES 32
#define ORDO__SECP256K1_SIG_BYTES 64
#define ORDO__SECP256K1_PUBLIC_HEX_SIZE                                        \
  ORDO__HEX_ENCODED_SIZE(ORDO__SECP256K1_PUBLIC_BYTES)

/* A random key pair (sk in [1, order - 1]). sk is secret. ORDO_E_INVAL for
 * NULL arguments; ORDO_E_CRYPTO if the library fails (sk is then wiped). */
int ordo__crypto_secp256k1_keypair(
    unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]);

/* The compressed public key of sk. ORDO_E_BAD_KEY when sk is 0 or not below
 * the group order. */
int ordo__crypto_secp256k1_pubkey_from_secret(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]);

/* The 66 lower-case hex characters of a compressed public key. The key is
 * not checked (it is only encoded). ORDO_E_INVAL for NULL arguments. */
int ordo__crypto_secp256k1_pubkey_hex(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES],
    char out[ORDO__SECP256K1_PUBLIC_HEX_SIZE]);

/*
 * Parse a public key from hex: 66 characters (compressed) or 130
 * (uncompressed), a point on the curve; written compressed to pub.
 * ORDO_E_BAD_KEY otherwise.
 */
int ordo__crypto_secp256k1_pubkey_from_hex(
    const char *hex, unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]);

/* Parse a secret key from 64 hex characters (Sawtooth's key files).
 * ORDO_E_BAD_KEY for bad hex or an invalid key; sk is then wiped. */
int ordo__crypto_secp256k1_seckey_from_hex(
    const char *hex, unsigned char sk[ORDO__SECP256K1_SECRET_BYTES]);

/*
 * Sign a 32-byte digest: compact r || s, low S. ORDO_E_BAD_KEY for an
 * invalid sk, ORDO_E_INVAL for NULL arguments.
 */
int ordo__crypto_secp256k1_sign(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    const unsigned char digest[ORDO__SECP256K1_DIGEST_BYTES],
    unsigned char sig[ORDO__SECP256K1_SIG_BYTES]);

/* SHA-256 of len bytes at msg, then sign: how Sawtooth signs a header. */
int ordo__crypto_secp256k1_sign_sha256(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES], const void *msg,
    size_t len, unsigned char sig[ORDO__SECP256K1_SIG_BYTES]);

/*
 * Check a compact signature over a digest. As with ed25519, a signature that
 * does not verify is an answer: ORDO_OK with *valid = 0. That includes a
 * high-S signature (the malleated twin of a valid one) and r or s out of
 * range. ORDO_E_BAD_KEY when pub is not a valid compressed point (nothing
 * could be checked), ORDO_E_INVAL for NULL arguments.
 */
int ordo__crypto_secp256k1_verify(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES],
    const unsigned char digest[ORDO__SECP256K1_DIGEST_BYTES],
    const unsigned char sig[ORDO__SECP256K1_SIG_BYTES], int *valid);

/* SHA-256 of len bytes at msg, then verify. */
int ordo__crypto_secp256k1_verify_sha256(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES], const void *msg,
    size_t len, const unsigned char sig[ORDO__SECP256K1_SIG_BYTES], int *valid);

/* ------------------------------------------------------------------------ */
/* Message envelopes: pack / unpack (pack.c)                                 */
/* ------------------------------------------------------------------------ */

/*
 * Aries RFC 0019 envelopes, as deployed agents (ACA-Py, libindy's
 * crypto.pack_message, askar) make them:
 *
 *   {"protected": b64url(P), "iv": b64url(12 bytes), "ciphertext": b64url,
 *    "tag": b64url(16 bytes)}
 *   P = {"enc":"xchacha20poly1305_ietf","typ":"JWM/1.0",
 *        "alg":"Authcrypt"|"Anoncrypt",
 *        "recipients":[{"encrypted_key":b64url,
 *                       "header":{"kid":"<recipient verkey>",
 *                                 "sender":b64url, "iv":b64url}}, ...]}
 *
 * The message is encrypted once with a random 32-byte content key (CEK)
 * under ChaCha20-Poly1305-IETF with a random 12-byte iv, as deployed agents
 * do whatever the "enc" label says, with the protected string (base64url
 * text, as sent) as associated data, so the header cannot be changed either.
 * Unpacking also reads a 24-byte iv, as XChaCha20-Poly1305-IETF: the
 * envelopes of earlier ordo versions. Each recipient gets the CEK under its
 * X25519 key (converted from its ed25519 verkey): anoncrypt:
 * crypto_box_seal(CEK); authcrypt: crypto_box_easy(CEK) from the sender's
 * X25519 key with a random 24-byte nonce ("iv" in the recipient header),
 * plus the sender's verkey string sealed to the recipient ("sender") so only
 * recipients learn who sent it. ordo writes base64url without padding and reads it with or
 * without.
 */

/* The largest message pack accepts (1 GiB): far above any agent message,
 * and low enough that no size computation can overflow. */
#define ORDO__PACK_MAX_MESSAGE ((size_t)1 << 30)

/*
 * Pack len bytes at msg (NULL allowed when len is 0) for n recipients
 * (verkey strings, ":ed25519" suffix allowed), authcrypt from the key pair
 * sender_sk64 (libsodium layout: seed || public key) or anoncrypt when it is
 * NULL. *out_json is a new string the caller frees with free().
 * ORDO_E_INVAL for NULL arguments, n == 0 or a message over the limit;
 * ORDO_E_BAD_KEY for a recipient verkey that does not parse or is not a
 * usable curve point; ORDO_E_NOMEM; ORDO_E_CRYPTO.
 */
int ordo__crypto_pack(const void *msg, size_t len,
                      const char *const *recipient_verkeys, size_t n,
                      const unsigned char *sender_sk64, char **out_json);

/*
 * The recipients' kids (verkey strings) of an envelope, in envelope order,
 * so a wallet can find which of its keys opens it. *kids is a new array of
 * *n new strings; free it with ordo__crypto_free_kids. Nothing is decrypted.
 * ORDO_E_UNPACK for an envelope whose structure is wrong: not a JSON object
 * with the four strings, a protected header that does not decode to a JSON
 * object, an unknown "enc" or "alg", no recipients, or a recipient entry
 * without the fields its "alg" needs. (The base64url of keys, ivs and the
 * ciphertext is read only by ordo__crypto_unpack.) ORDO_E_INVAL for NULL
 * arguments; ORDO_E_NOMEM. On error *kids is NULL and *n 0.
 */
int ordo__crypto_unpack_kids(const char *envelope, char ***kids, size_t *n);

/* Free what ordo__crypto_unpack_kids returned. NULL accepted. */
void ordo__crypto_free_kids(char **kids, size_t n);

/*
 * Open an envelope with the recipient key pair recipient_sk64, whose verkey
 * string is recipient_verkey. On ORDO_OK *msg is a new buffer of *len bytes
 * followed by a NUL byte (free it with free(), after wiping if it is
 * secret), and for authcrypt *sender_verkey is the sender's verkey string
 * (new; free()); for anoncrypt *sender_verkey is NULL (the argument itself
 * may be NULL when the caller does not want it; authcrypt is then still
 * authenticated, the sender just not reported).
 *
 * ORDO_E_UNPACK, with every output NULL/0, for anything that does not open:
 * malformed JSON or base64url, an iv of neither 12 nor 24 bytes (the one
 * case that also sets the thread's ordo_last_error_message, naming the
 * problem), an unknown "enc" or "alg", no recipient entry
 * for recipient_verkey, a wrong key, or any change to the protected header,
 * an encrypted key, the sender, an iv, the ciphertext or the tag.
 * ORDO_E_INVAL for NULL arguments or a recipient_verkey that does not parse
 * or is not the public half of recipient_sk64; ORDO_E_NOMEM.
 */
int ordo__crypto_unpack(
    const char *envelope, const char *recipient_verkey,
    const unsigned char recipient_sk64[ORDO__ED25519_SECRET_BYTES],
    unsigned char **msg, size_t *len, char **sender_verkey);

/* ------------------------------------------------------------------------ */
/* Credential-definition keys, CL signatures (OpenSSL BIGNUM; cl.c)          */
/* ------------------------------------------------------------------------ */

/*
 * The primary key of a CL credential definition, as Hyperledger Ursa's
 * issuer makes it: safe primes p = 2p' + 1 and q = 2q' + 1 of `bits` bits,
 * n = pq, S a random quadratic residue generating QR_n (S^p' != 1 and
 * S^q' != 1 mod n), and Z = S^x_Z, R_a = S^x_a mod n for one secret x_a per
 * attribute, each uniform in [2, p'q' - 1].
 *
 * Attribute names are normalised as Indy does (ASCII spaces removed, ASCII
 * letters lower-cased) and "master_secret" is added. In every list and hash
 * below attributes appear in ascending byte order of their normalised names
 * (strcmp), "master_secret" among them, which is also the key order of the
 * JSON objects written.
 *
 * Key-correctness proof (Fiat-Shamir, as Ursa's KeyCorrectnessProof, with
 * SHA-256): random x~_Z, x~_a in [2, p'q' - 1]; Z~ = S^x~_Z, R~_a = S^x~_a;
 *   c = SHA-256(n "|" S "|" Z "|" R_1 "|" ... "|" R_k "|" Z~ "|" R~_1 "|"
 *               ... "|" R~_k)
 * over the decimal strings (no leading zeros, no sign) of the values, read as
 * a big-endian integer; x^_Z = x~_Z + c x_Z and x^_a = x~_a + c x_a over the
 * integers. The verifier recomputes Z~ = Z^-c S^x^_Z and each R~_a likewise
 * (mod n) and accepts iff the hash comes out as c.
 *
 * JSON (numbers as decimal strings):
 *   public:  {"n":…,"s":…,"z":…,"r":{"<attr>":…,…,"master_secret":…}}
 *   private: {"p":…,"q":…}  (the safe primes; p', q' follow from them. The
 *            x exponents are not kept: issuing signs with Z and R_a.)
 *   proof:   {"c":…,"xz_cap":…,"xr_cap":{"<attr>":…,…}}
 */
#define ORDO__CL_MIN_BITS 256
#define ORDO__CL_MAX_BITS 4096
/* Indy schemas stop at 125 attributes; this only keeps allocations sane. */
#define ORDO__CL_MAX_ATTRS 1024

/*
 * Generate a key and its proof. attrs may be NULL when nattrs is 0 (the key
 * then covers master_secret only). The three outputs are new strings:
 * *public_json and *proof_json free with free(), *private_json with
 * ordo__free_secret. Seconds long at 1025 bits: call it on the heavy
 * class. It checks ordo_op_cancelled() inside each prime search and between
 * all later steps, and returns ORDO_E_CANCELED (having wiped and freed
 * everything) when asked to stop.
 *
 * ORDO_E_INVAL for bits outside [MIN_BITS, MAX_BITS], more than MAX_ATTRS
 * attributes, an attribute name that is NULL, empty after normalisation, or
 * equal to another (or to "master_secret") after it, or NULL outputs;
 * ORDO_E_NOMEM, ORDO_E_CRYPTO. On error all three outputs are NULL.
 */
int ordo__crypto_cl_keygen(int bits, const char *const *attrs, size_t nattrs,
                           char **public_json, char **private_json,
                           char **proof_json);

/*
 * Verify a key-correctness proof against a public key. ORDO_OK when it
 * verifies; ORDO_E_PROOF when it does not, including values no honest key
 * has (n even or not of 2 * MIN_BITS - 1 .. 2 * MAX_BITS bits; S, Z, R_a not
 * in [2, n - 1], or Z, R_a not invertible mod n; c of more than 256 bits; an
 * x^ more than 258 bits longer than n) and proof attributes that differ from
 * the key's. ORDO_E_INVAL for JSON that is malformed or lacks a field, or a
 * number that is not a string of 1 to 2600 decimal digits. ORDO_E_NOMEM,
 * ORDO_E_CRYPTO. Public data only: any thread, cheap class (a few
 * exponentiations per attribute).
 */
int ordo__crypto_cl_verify_proof(const char *public_json,
                                 const char *proof_json);

#endif /* ORDO_CRYPTO_H */
