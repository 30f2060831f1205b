/*
 * softsdf — a software GM/T 0018 SDF library over OpenSSL 3 libcrypto, for tests and desk demos.
 * It is loaded through the real addon (dlopen), so the whole path — sessions, async work, error
 * mapping — runs without a PCI-E card. It is NOT a secure key store: keys sit in a plain file.
 *
 * It is deliberately as strict as the standard lets a library be, so the addon is tested against what
 * GM/T 0018 promises and no more:
 *  - symmetric keys reach a session only through the standard: SDF_GenerateKeyWithKEK /
 *    SDF_ImportKeyWithKEK and the digital envelope SDF_ImportKeyWithISK_ECC. The vendor extension
 *    SDF_GetSymmKeyHandle (a handle on an internal key by index) exists only in the "vendor" build
 *    (-DSOFTSDF_VENDOR_KEYHANDLE, build/libsoftsdf-vendor.so), for the quirk-table tests;
 *  - the KEK wraps with SM4-ECB (16-byte key → 16-byte blob) or SM4-CBC (IV ‖ SM4-CBC(PKCS#7(key)):
 *    a 16-byte key → 48-byte blob), chosen by uiAlgID;
 *  - the device keeps its sessions in a list WITHOUT a lock (the standard does not require a library to
 *    be thread-safe, and some vendors' are not): parallel SDF_OpenSession/SDF_CloseSession corrupt it
 *    and crash, as such libraries do; sched_yield() in the window makes the race show;
 *  - SDF_HashUpdate of 0 bytes is refused (SDR_INARGERR), as some libraries do.
 *
 * Device keys (what the vendor's management tool puts in a card) from the file named by
 * SOFTSDF_KEYFILE, read at SDF_OpenDevice (one per line):
 *   sym <index> <32 hex>            internal symmetric key: a KEK for Generate/ImportKeyWithKEK
 *   sm2 <index> <64 hex d> <130 hex 04||X||Y>     SM2 sign key pair (SDF_InternalSign_ECC)
 *   sm2enc <index> <64 hex d> <130 hex 04||X||Y>  SM2 encryption key pair (SDF_ExportEncPublicKey_ECC,
 *                                                 SDF_ImportKeyWithISK_ECC)
 *   pin <index> <password>          private key access password of both pairs at that index
 *   # comment
 *
 * Fault injection: SOFTSDF_FAIL="SDF_Encrypt:SDR_KEYNOTEXIST,SDF_OpenSession:0x01000003" makes the named
 * functions return that code; "*" names every function. Read on every call, so a test can change it
 * while the library is loaded (e.g. "*:SDR_COMMFAIL" is a card pulled out mid-run).
 * SOFTSDF_DELAY_MS=n makes every call take n ms longer (a slow card, for the event-loop test).
 *
 * SM2: SDF_HashInit with a public key and ID prefixes ZA; SDF_InternalSign_ECC signs the digest with
 * the OpenSSL SM2 signature provider. SDF_OpenDevice checks that ZA against OpenSSL's own
 * (EVP_PKEY_CTX_set1_id + EVP_DigestSign) for every SM2 key and fails with SDR_HARDFAIL on a mismatch.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "../src/sdf.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_KEYS 256
#define DEVICE_MAGIC 0x53445644u
#define SESSION_MAGIC 0x53455353u
#define KEY_MAGIC 0x4b455953u

typedef struct {
  int present;
  unsigned char key[16];
} SymKey;

typedef struct {
  EVP_PKEY *pkey;
  unsigned char pub[65];
  char pin[64];
  int has_pin;
} Sm2Key;

struct Session;

typedef struct {
  uint32_t magic;
  SymKey sym[MAX_KEYS];
  Sm2Key sm2[MAX_KEYS];
  Sm2Key enc[MAX_KEYS];
  struct Session *sessions; /* open sessions: NO lock (see the header) */
  unsigned char curve_abg[128]; /* a ‖ b ‖ xG ‖ yG for ZA */
  EVP_CIPHER *sm4_ecb, *sm4_cbc;
  EVP_MD *sm3;
} Device;

typedef struct Session {
  uint32_t magic;
  struct Session *next;
  Device *dev;
  EVP_MD_CTX *md;
  int hashing;
  unsigned char rights[MAX_KEYS];
} Session;

typedef struct {
  uint32_t magic;
  Session *session;
  unsigned char key[16];
} KeyHandle;

static const struct {
  const char *name;
  int code;
} SDR_NAMES[] = {
    {"SDR_UNKNOWERR", SDR_UNKNOWERR},     {"SDR_NOTSUPPORT", SDR_NOTSUPPORT},   {"SDR_COMMFAIL", SDR_COMMFAIL},
    {"SDR_HARDFAIL", SDR_HARDFAIL},       {"SDR_OPENDEVICE", SDR_OPENDEVICE},   {"SDR_OPENSESSION", SDR_OPENSESSION},
    {"SDR_PARDENY", SDR_PARDENY},         {"SDR_KEYNOTEXIST", SDR_KEYNOTEXIST}, {"SDR_ALGNOTSUPPORT", SDR_ALGNOTSUPPORT},
    {"SDR_SIGNERR", SDR_SIGNERR},         {"SDR_VERIFYERR", SDR_VERIFYERR},     {"SDR_SYMOPERR", SDR_SYMOPERR},
    {"SDR_KEYERR", SDR_KEYERR},           {"SDR_RANDERR", SDR_RANDERR},         {"SDR_NOBUFFER", SDR_NOBUFFER},
    {"SDR_INARGERR", SDR_INARGERR},       {"SDR_OUTARGERR", SDR_OUTARGERR},     {NULL, 0}};

/* SOFTSDF_FAIL lookup: returns the code to fail `fn` with, or 0. */
static int fault(const char *fn) {
  const char *delay = getenv("SOFTSDF_DELAY_MS");
  if (delay && *delay) {
    long ms = strtol(delay, NULL, 10);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (ms > 0) nanosleep(&ts, NULL);
  }
  const char *spec = getenv("SOFTSDF_FAIL");
  if (!spec || !*spec) return 0;
  char buf[512];
  strncpy(buf, spec, sizeof buf - 1);
  buf[sizeof buf - 1] = 0;
  char *save = NULL;
  for (char *item = strtok_r(buf, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
    char *colon = strchr(item, ':');
    if (!colon) continue;
    *colon = 0;
    const char *code = colon + 1;
    if (strcmp(item, "*") != 0 && strcmp(item, fn) != 0) continue;
    for (int i = 0; SDR_NAMES[i].name; i++)
      if (strcmp(SDR_NAMES[i].name, code) == 0) return SDR_NAMES[i].code;
    long v = strtol(code, NULL, 0);
    return v ? (int)v : SDR_UNKNOWERR;
  }
  return 0;
}
#define FAULT(fn)                 \
  do {                            \
    int _rc = fault(fn);          \
    if (_rc) return _rc;          \
  } while (0)

static int unhex(const char *hex, unsigned char *out, size_t n) {
  if (strlen(hex) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned int b;
    if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1])) return -1;
    if (sscanf(hex + 2 * i, "%2x", &b) != 1) return -1;
    out[i] = (unsigned char)b;
  }
  return 0;
}

static EVP_PKEY *sm2_from(const unsigned char d[32], const unsigned char pub[65]) {
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn = BN_bin2bn(d, 32, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
  if (bn && bld && ctx && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) > 0) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) pkey = NULL;
  }
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  BN_free(bn);
  return pkey;
}

static int curve_params(unsigned char out[128]) {
  int ok = 0;
  EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_sm2);
  BIGNUM *p = BN_new(), *a = BN_new(), *b = BN_new(), *x = BN_new(), *y = BN_new();
  if (g && p && a && b && x && y && EC_GROUP_get_curve(g, p, a, b, NULL) &&
      EC_POINT_get_affine_coordinates(g, EC_GROUP_get0_generator(g), x, y, NULL) && BN_bn2binpad(a, out, 32) == 32 &&
      BN_bn2binpad(b, out + 32, 32) == 32 && BN_bn2binpad(x, out + 64, 32) == 32 && BN_bn2binpad(y, out + 96, 32) == 32)
    ok = 1;
  BN_free(p), BN_free(a), BN_free(b), BN_free(x), BN_free(y);
  EC_GROUP_free(g);
  return ok;
}

static void device_free(Device *dev) {
  if (!dev) return;
  for (int i = 0; i < MAX_KEYS; i++) EVP_PKEY_free(dev->sm2[i].pkey), EVP_PKEY_free(dev->enc[i].pkey);
  EVP_CIPHER_free(dev->sm4_ecb);
  EVP_CIPHER_free(dev->sm4_cbc);
  EVP_MD_free(dev->sm3);
  OPENSSL_cleanse(dev, sizeof *dev);
  free(dev);
}

static int load_keys(Device *dev, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[1024];
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    char kind[12], a[200], b[200];
    unsigned int idx;
    int n = sscanf(line, "%11s %u %199s %199s", kind, &idx, a, b);
    if (n <= 0 || kind[0] == '#') continue;
    if (n < 3 || idx >= MAX_KEYS) {
      rc = -1;
      break;
    }
    if (strcmp(kind, "sym") == 0) {
      if (unhex(a, dev->sym[idx].key, 16)) { rc = -1; break; }
      dev->sym[idx].present = 1;
    } else if (strcmp(kind, "sm2") == 0 || strcmp(kind, "sm2enc") == 0) {
      Sm2Key *k = strcmp(kind, "sm2") == 0 ? &dev->sm2[idx] : &dev->enc[idx];
      unsigned char d[32];
      if (n < 4 || unhex(a, d, 32) || unhex(b, k->pub, 65)) { rc = -1; break; }
      EVP_PKEY_free(k->pkey);
      k->pkey = sm2_from(d, k->pub);
      OPENSSL_cleanse(d, sizeof d);
      if (!k->pkey) { rc = -1; break; }
    } else if (strcmp(kind, "pin") == 0) {
      if (strlen(a) >= sizeof dev->sm2[idx].pin) { rc = -1; break; }
      memcpy(dev->sm2[idx].pin, a, strlen(a) + 1);
      dev->sm2[idx].has_pin = 1;
    } else {
      rc = -1;
      break;
    }
  }
  OPENSSL_cleanse(line, sizeof line);
  fclose(f);
  return rc;
}

/* ZA = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) (GB/T 32918.2 §5.5). OpenSSL keeps its own ZA
 * internal, and SDF hands the card the digest e = SM3(ZA ‖ M), so it is computed here — and checked
 * against OpenSSL's at every SDF_OpenDevice (za_selftest). */
static int compute_za(const Device *dev, const unsigned char x[32], const unsigned char y[32], const unsigned char *id,
                      unsigned int idLen, unsigned char za[32]) {
  unsigned char entl[2] = {(unsigned char)((idLen * 8) >> 8), (unsigned char)(idLen * 8)};
  unsigned int zlen = 0;
  EVP_MD_CTX *z = EVP_MD_CTX_new();
  int ok = z && EVP_DigestInit_ex(z, dev->sm3, NULL) == 1 && EVP_DigestUpdate(z, entl, 2) == 1 &&
           EVP_DigestUpdate(z, id, idLen) == 1 && EVP_DigestUpdate(z, dev->curve_abg, 128) == 1 &&
           EVP_DigestUpdate(z, x, 32) == 1 && EVP_DigestUpdate(z, y, 32) == 1 && EVP_DigestFinal_ex(z, za, &zlen) == 1;
  EVP_MD_CTX_free(z);
  return ok;
}

/* Sign with OpenSSL's own SM2 digest-sign (EVP_PKEY_CTX_set1_id, default user ID), verify that
 * signature on our e = SM3(ZA ‖ M): both must agree, or the device refuses to open. */
static int za_selftest(const Device *dev, const Sm2Key *k) {
  static const unsigned char id[] = "1234567812345678";
  static const unsigned char msg[] = "softsdf ZA self-test";
  unsigned char sig[80], za[32], e[32];
  size_t sigLen = sizeof sig;
  unsigned int eLen = 0;
  int ok = 0;
  EVP_MD_CTX *mctx = EVP_MD_CTX_new(), *h = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
  EVP_PKEY_CTX *vctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
  if (mctx && h && pctx && vctx && EVP_PKEY_CTX_set1_id(pctx, id, 16) > 0) {
    EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
    ok = EVP_DigestSignInit(mctx, NULL, dev->sm3, NULL, k->pkey) == 1 &&
         EVP_DigestSign(mctx, sig, &sigLen, msg, sizeof msg - 1) == 1 && compute_za(dev, k->pub + 1, k->pub + 33, id, 16, za) &&
         EVP_DigestInit_ex(h, dev->sm3, NULL) == 1 && EVP_DigestUpdate(h, za, 32) == 1 &&
         EVP_DigestUpdate(h, msg, sizeof msg - 1) == 1 && EVP_DigestFinal_ex(h, e, &eLen) == 1 &&
         EVP_PKEY_verify_init(vctx) == 1 && EVP_PKEY_verify(vctx, sig, sigLen, e, 32) == 1;
  }
  EVP_MD_CTX_free(mctx); /* frees pctx too (set_pkey_ctx hands it over) */
  if (!mctx) EVP_PKEY_CTX_free(pctx);
  EVP_MD_CTX_free(h);
  EVP_PKEY_CTX_free(vctx);
  return ok;
}

#define DEV(h) ((Device *)(h))
#define SES(h) ((Session *)(h))
#define CHECK_SESSION(h) \
  if (!(h) || SES(h)->magic != SESSION_MAGIC) return SDR_OPENSESSION

EXPORT int SDF_OpenDevice(void **phDeviceHandle) {
  FAULT("SDF_OpenDevice");
  if (!phDeviceHandle) return SDR_INARGERR;
  const char *path = getenv("SOFTSDF_KEYFILE");
  if (!path || !*path) return SDR_OPENDEVICE;
  Device *dev = calloc(1, sizeof *dev);
  if (!dev) return SDR_NOBUFFER;
  dev->magic = DEVICE_MAGIC;
  dev->sm4_ecb = EVP_CIPHER_fetch(NULL, "SM4-ECB", NULL);
  dev->sm4_cbc = EVP_CIPHER_fetch(NULL, "SM4-CBC", NULL);
  dev->sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
  if (!dev->sm4_ecb || !dev->sm4_cbc || !dev->sm3 || !curve_params(dev->curve_abg)) {
    device_free(dev);
    return SDR_HARDFAIL;
  }
  if (load_keys(dev, path) != 0) {
    device_free(dev);
    return SDR_OPENDEVICE;
  }
  for (int i = 0; i < MAX_KEYS; i++) {
    if (dev->sm2[i].pkey && !za_selftest(dev, &dev->sm2[i])) {
      device_free(dev);
      return SDR_HARDFAIL;
    }
  }
  *phDeviceHandle = dev;
  return SDR_OK;
}

static void session_free(Session *s) {
  EVP_MD_CTX_free(s->md);
  s->magic = 0;
  free(s);
}

EXPORT int SDF_CloseDevice(void *hDeviceHandle) {
  FAULT("SDF_CloseDevice");
  if (!hDeviceHandle || DEV(hDeviceHandle)->magic != DEVICE_MAGIC) return SDR_INARGERR;
  Device *dev = DEV(hDeviceHandle);
  /* the standard: closing the device closes its sessions */
  for (Session *s = dev->sessions, *next; s; s = next) {
    next = s->next;
    session_free(s);
  }
  device_free(dev);
  return SDR_OK;
}

EXPORT int SDF_OpenSession(void *hDeviceHandle, void **phSessionHandle) {
  FAULT("SDF_OpenSession");
  if (!hDeviceHandle || DEV(hDeviceHandle)->magic != DEVICE_MAGIC || !phSessionHandle) return SDR_INARGERR;
  Session *s = calloc(1, sizeof *s);
  if (!s) return SDR_NOBUFFER;
  s->magic = SESSION_MAGIC;
  s->dev = DEV(hDeviceHandle);
  s->md = EVP_MD_CTX_new();
  if (!s->md) {
    free(s);
    return SDR_NOBUFFER;
  }
  /* unlocked list insert: two threads here at once lose a session or link a freed one */
  Session *head = s->dev->sessions;
  sched_yield();
  s->next = head;
  s->dev->sessions = s;
  *phSessionHandle = s;
  return SDR_OK;
}

EXPORT int SDF_CloseSession(void *hSessionHandle) {
  FAULT("SDF_CloseSession");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  /* unlocked list removal: two threads here at once write through freed nodes */
  Session **link = &s->dev->sessions;
  while (*link && *link != s) link = &(*link)->next;
  sched_yield();
  if (*link == s) *link = s->next;
  session_free(s);
  return SDR_OK;
}

EXPORT int SDF_GetDeviceInfo(void *hSessionHandle, DEVICEINFO *info) {
  FAULT("SDF_GetDeviceInfo");
  CHECK_SESSION(hSessionHandle);
  if (!info) return SDR_INARGERR;
  memset(info, 0, sizeof *info);
  memcpy(info->IssuerName, "ehc-edge softsdf (OpenSSL)", 26);
  memcpy(info->DeviceName, "SOFTSDF", 7);
  memcpy(info->DeviceSerial, "SOFT000000000001", 16);
  info->DeviceVersion = 0x00010000;
  info->StandardVersion = 1;
  info->AsymAlgAbility[0] = SGD_SM2_1 | SGD_SM2_3;
  info->AsymAlgAbility[1] = 256;
  info->SymAlgAbility = SGD_SM4_ECB | SGD_SM4_CBC;
  info->HashAlgAbility = SGD_SM3;
  info->BufferSize = 1 << 20;
  return SDR_OK;
}

EXPORT int SDF_GenerateRandom(void *hSessionHandle, unsigned int uiLength, unsigned char *pucRandom) {
  FAULT("SDF_GenerateRandom");
  CHECK_SESSION(hSessionHandle);
  if (!pucRandom) return SDR_INARGERR;
  return RAND_bytes(pucRandom, (int)uiLength) == 1 ? SDR_OK : SDR_RANDERR;
}

EXPORT int SDF_GetPrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex, unsigned char *pucPassword,
                                        unsigned int uiPwdLength) {
  FAULT("SDF_GetPrivateKeyAccessRight");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (uiKeyIndex >= MAX_KEYS || (!s->dev->sm2[uiKeyIndex].pkey && !s->dev->enc[uiKeyIndex].pkey)) return SDR_KEYNOTEXIST;
  const Sm2Key *k = &s->dev->sm2[uiKeyIndex];
  if (k->has_pin && (uiPwdLength != strlen(k->pin) || !pucPassword || memcmp(pucPassword, k->pin, uiPwdLength) != 0))
    return SDR_PARDENY;
  s->rights[uiKeyIndex] = 1;
  return SDR_OK;
}

EXPORT int SDF_ReleasePrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex) {
  FAULT("SDF_ReleasePrivateKeyAccessRight");
  CHECK_SESSION(hSessionHandle);
  if (uiKeyIndex >= MAX_KEYS) return SDR_INARGERR;
  SES(hSessionHandle)->rights[uiKeyIndex] = 0;
  return SDR_OK;
}

/* ECC fields hold a 256-bit value right-aligned in ECCref_MAX_LEN bytes. */
static void put_field(unsigned char *field, const unsigned char v[32]) {
  memset(field, 0, ECCref_MAX_LEN);
  memcpy(field + ECCref_MAX_LEN - 32, v, 32);
}

EXPORT int SDF_ExportSignPublicKey_ECC(void *hSessionHandle, unsigned int uiKeyIndex, void *pucPublicKey) {
  FAULT("SDF_ExportSignPublicKey_ECC");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucPublicKey) return SDR_INARGERR;
  if (uiKeyIndex >= MAX_KEYS || !s->dev->sm2[uiKeyIndex].pkey) return SDR_KEYNOTEXIST;
  ECCrefPublicKey *pk = pucPublicKey;
  pk->bits = 256;
  put_field(pk->x, s->dev->sm2[uiKeyIndex].pub + 1);
  put_field(pk->y, s->dev->sm2[uiKeyIndex].pub + 33);
  return SDR_OK;
}

static int new_key(Session *s, const unsigned char key[16], void **phKeyHandle) {
  KeyHandle *k = calloc(1, sizeof *k);
  if (!k) return SDR_NOBUFFER;
  k->magic = KEY_MAGIC;
  k->session = s;
  memcpy(k->key, key, 16);
  *phKeyHandle = k;
  return SDR_OK;
}

#ifdef SOFTSDF_VENDOR_KEYHANDLE
/* vendor extension (not in GM/T 0018): a handle on the internal symmetric key at an index */
EXPORT int SDF_GetSymmKeyHandle(void *hSessionHandle, unsigned int uiKeyIndex, void **phKeyHandle) {
  FAULT("SDF_GetSymmKeyHandle");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!phKeyHandle) return SDR_INARGERR;
  if (uiKeyIndex >= MAX_KEYS || !s->dev->sym[uiKeyIndex].present) return SDR_KEYNOTEXIST;
  return new_key(s, s->dev->sym[uiKeyIndex].key, phKeyHandle);
}
#endif

static int sm4(Session *s, const unsigned char *key, unsigned int alg, unsigned char *iv, const unsigned char *in,
               unsigned int len, unsigned char *out, unsigned int *outLen, int enc) {
  if (!in || !out || !outLen) return SDR_INARGERR;
  if (len == 0 || len % 16 != 0) return SDR_INARGERR;
  const EVP_CIPHER *c = alg == SGD_SM4_ECB ? s->dev->sm4_ecb : alg == SGD_SM4_CBC ? s->dev->sm4_cbc : NULL;
  if (!c) return SDR_ALGNOTSUPPORT;
  if (alg == SGD_SM4_CBC && !iv) return SDR_INARGERR;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n1 = 0, n2 = 0, rc = SDR_SYMOPERR;
  if (ctx && EVP_CipherInit_ex2(ctx, c, key, alg == SGD_SM4_CBC ? iv : NULL, enc, NULL) == 1 &&
      EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 && EVP_CipherUpdate(ctx, out, &n1, in, (int)len) == 1 &&
      EVP_CipherFinal_ex(ctx, out + n1, &n2) == 1) {
    *outLen = (unsigned int)(n1 + n2);
    /* the standard returns the next IV in pucIV: the last ciphertext block */
    if (alg == SGD_SM4_CBC) memcpy(iv, (enc ? out : in) + len - 16, 16);
    rc = SDR_OK;
  }
  EVP_CIPHER_CTX_free(ctx);
  return rc;
}

/* Key wrap under a KEK, by uiAlgID: SM4-ECB: the 16-byte key, no padding (16 bytes);
 * SM4-CBC: IV ‖ SM4-CBC(IV, key ‖ PKCS#7 padding) (16 + 32 = 48 bytes). */
static int wrap(Session *s, unsigned int alg, const unsigned char kek[16], const unsigned char key[16], unsigned char *out,
                unsigned int *outLen) {
  unsigned int n = 0;
  if (alg == SGD_SM4_ECB) {
    int rc = sm4(s, kek, SGD_SM4_ECB, NULL, key, 16, out, &n, 1);
    if (rc == SDR_OK) *outLen = n;
    return rc;
  }
  if (alg != SGD_SM4_CBC) return SDR_ALGNOTSUPPORT;
  unsigned char iv[16], padded[32];
  if (RAND_bytes(iv, 16) != 1) return SDR_RANDERR;
  memcpy(padded, key, 16);
  memset(padded + 16, 16, 16);
  memcpy(out, iv, 16);
  int rc = sm4(s, kek, SGD_SM4_CBC, iv, padded, 32, out + 16, &n, 1);
  OPENSSL_cleanse(padded, sizeof padded);
  if (rc == SDR_OK) *outLen = 16 + n;
  return rc;
}

static int unwrap(Session *s, unsigned int alg, const unsigned char kek[16], const unsigned char *blob, unsigned int len,
                  unsigned char key[16]) {
  unsigned int n = 0;
  if (alg == SGD_SM4_ECB) {
    if (len != 16) return SDR_INARGERR;
    return sm4(s, kek, SGD_SM4_ECB, NULL, blob, 16, key, &n, 0);
  }
  if (alg != SGD_SM4_CBC) return SDR_ALGNOTSUPPORT;
  if (len != 48) return SDR_INARGERR;
  unsigned char iv[16], padded[32];
  memcpy(iv, blob, 16);
  int rc = sm4(s, kek, SGD_SM4_CBC, iv, blob + 16, 32, padded, &n, 0);
  if (rc == SDR_OK) {
    for (int i = 16; i < 32; i++)
      if (padded[i] != 16) rc = SDR_KEYERR; /* wrong KEK or not a wrapped 128-bit key */
    if (rc == SDR_OK) memcpy(key, padded, 16);
  }
  OPENSSL_cleanse(padded, sizeof padded);
  return rc;
}

EXPORT int SDF_ImportKeyWithKEK(void *hSessionHandle, unsigned int uiAlgID, unsigned int uiKEKIndex,
                                unsigned char *pucKey, unsigned int uiKeyLength, void **phKeyHandle) {
  FAULT("SDF_ImportKeyWithKEK");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucKey || !phKeyHandle) return SDR_INARGERR;
  if (uiAlgID != SGD_SM4_ECB && uiAlgID != SGD_SM4_CBC) return SDR_ALGNOTSUPPORT;
  if (uiKEKIndex >= MAX_KEYS || !s->dev->sym[uiKEKIndex].present) return SDR_KEYNOTEXIST;
  unsigned char plain[16];
  int rc = unwrap(s, uiAlgID, s->dev->sym[uiKEKIndex].key, pucKey, uiKeyLength, plain);
  if (rc == SDR_OK) rc = new_key(s, plain, phKeyHandle);
  OPENSSL_cleanse(plain, sizeof plain);
  return rc;
}

#ifndef SOFTSDF_NO_KEYGEN /* -DSOFTSDF_NO_KEYGEN: a library without it, for the "names the missing function" tests */
/* A new random session key, also handed out wrapped under the KEK (the caller keeps the blob). */
EXPORT int SDF_GenerateKeyWithKEK(void *hSessionHandle, unsigned int uiKeyBits, unsigned int uiAlgID,
                                  unsigned int uiKEKIndex, unsigned char *pucKey, unsigned int *puiKeyLength,
                                  void **phKeyHandle) {
  FAULT("SDF_GenerateKeyWithKEK");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucKey || !puiKeyLength || !phKeyHandle) return SDR_INARGERR;
  if (uiKeyBits != 128) return SDR_INARGERR;
  if (uiAlgID != SGD_SM4_ECB && uiAlgID != SGD_SM4_CBC) return SDR_ALGNOTSUPPORT;
  if (uiKEKIndex >= MAX_KEYS || !s->dev->sym[uiKEKIndex].present) return SDR_KEYNOTEXIST;
  unsigned char key[16];
  if (RAND_bytes(key, 16) != 1) return SDR_RANDERR;
  int rc = wrap(s, uiAlgID, s->dev->sym[uiKEKIndex].key, key, pucKey, puiKeyLength);
  if (rc == SDR_OK) rc = new_key(s, key, phKeyHandle);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}
#endif

EXPORT int SDF_ExportEncPublicKey_ECC(void *hSessionHandle, unsigned int uiKeyIndex, void *pucPublicKey) {
  FAULT("SDF_ExportEncPublicKey_ECC");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucPublicKey) return SDR_INARGERR;
  if (uiKeyIndex >= MAX_KEYS || !s->dev->enc[uiKeyIndex].pkey) return SDR_KEYNOTEXIST;
  ECCrefPublicKey *pk = pucPublicKey;
  pk->bits = 256;
  put_field(pk->x, s->dev->enc[uiKeyIndex].pub + 1);
  put_field(pk->y, s->dev->enc[uiKeyIndex].pub + 33);
  return SDR_OK;
}

/* DER helpers for OpenSSL's SM2 ciphertext: SEQUENCE { INTEGER x, INTEGER y, OCTET STRING hash, OCTET STRING c } */
static size_t der_len(unsigned char *p, size_t n) {
  if (n < 128) return p ? (p[0] = (unsigned char)n, 1) : 1;
  if (n < 256) return p ? (p[0] = 0x81, p[1] = (unsigned char)n, 2) : 2;
  return p ? (p[0] = 0x82, p[1] = (unsigned char)(n >> 8), p[2] = (unsigned char)n, 3) : 3;
}
static size_t der_tlv(unsigned char *p, unsigned char tag, const unsigned char *v, size_t n, int integer) {
  while (integer && n > 1 && v[0] == 0) v++, n--;
  int pad = integer && (v[0] & 0x80);
  size_t body = n + pad, hdr = 1 + der_len(NULL, body);
  if (p) {
    p[0] = tag;
    der_len(p + 1, body);
    if (pad) p[hdr] = 0;
    memcpy(p + hdr + pad, v, n);
  }
  return hdr + body;
}

/* The digital envelope: a session key SM2-encrypted to the card's encryption key at uiISKIndex. */
EXPORT int SDF_ImportKeyWithISK_ECC(void *hSessionHandle, unsigned int uiISKIndex, void *pucKey, void **phKeyHandle) {
  FAULT("SDF_ImportKeyWithISK_ECC");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucKey || !phKeyHandle) return SDR_INARGERR;
  if (uiISKIndex >= MAX_KEYS || !s->dev->enc[uiISKIndex].pkey) return SDR_KEYNOTEXIST;
  if (s->dev->sm2[uiISKIndex].has_pin && !s->rights[uiISKIndex]) return SDR_PARDENY;
  const ECCCipher *c = pucKey;
  if (c->L == 0 || c->L > 1024) return SDR_INARGERR;
  const unsigned char *x = c->x + ECCref_MAX_LEN - 32, *y = c->y + ECCref_MAX_LEN - 32;
  size_t inner = der_tlv(NULL, 0x02, x, 32, 1) + der_tlv(NULL, 0x02, y, 32, 1) + der_tlv(NULL, 0x04, c->M, 32, 0) +
                 der_tlv(NULL, 0x04, c->C, c->L, 0);
  size_t total = 1 + der_len(NULL, inner) + inner;
  unsigned char *der = malloc(total), *p = der;
  if (!der) return SDR_NOBUFFER;
  *p++ = 0x30;
  p += der_len(p, inner);
  p += der_tlv(p, 0x02, x, 32, 1);
  p += der_tlv(p, 0x02, y, 32, 1);
  p += der_tlv(p, 0x04, c->M, 32, 0);
  p += der_tlv(p, 0x04, c->C, c->L, 0);
  unsigned char plain[1024];
  size_t plainLen = sizeof plain;
  int rc = SDR_PKOPERR;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->dev->enc[uiISKIndex].pkey, NULL);
  if (ctx && EVP_PKEY_decrypt_init(ctx) == 1 && EVP_PKEY_decrypt(ctx, plain, &plainLen, der, total) == 1)
    rc = plainLen == 16 ? new_key(s, plain, phKeyHandle) : SDR_KEYERR;
  EVP_PKEY_CTX_free(ctx);
  OPENSSL_cleanse(plain, sizeof plain);
  free(der);
  return rc;
}

EXPORT int SDF_DestroyKey(void *hSessionHandle, void *hKeyHandle) {
  FAULT("SDF_DestroyKey");
  CHECK_SESSION(hSessionHandle);
  KeyHandle *k = hKeyHandle;
  if (!k || k->magic != KEY_MAGIC) return SDR_KEYNOTEXIST;
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
  return SDR_OK;
}

EXPORT int SDF_Encrypt(void *hSessionHandle, void *hKeyHandle, unsigned int uiAlgID, unsigned char *pucIV,
                       unsigned char *pucData, unsigned int uiDataLength, unsigned char *pucEncData,
                       unsigned int *puiEncDataLength) {
  FAULT("SDF_Encrypt");
  CHECK_SESSION(hSessionHandle);
  KeyHandle *k = hKeyHandle;
  if (!k || k->magic != KEY_MAGIC) return SDR_KEYNOTEXIST;
  return sm4(SES(hSessionHandle), k->key, uiAlgID, pucIV, pucData, uiDataLength, pucEncData, puiEncDataLength, 1);
}

EXPORT int SDF_Decrypt(void *hSessionHandle, void *hKeyHandle, unsigned int uiAlgID, unsigned char *pucIV,
                       unsigned char *pucEncData, unsigned int uiEncDataLength, unsigned char *pucData,
                       unsigned int *puiDataLength) {
  FAULT("SDF_Decrypt");
  CHECK_SESSION(hSessionHandle);
  KeyHandle *k = hKeyHandle;
  if (!k || k->magic != KEY_MAGIC) return SDR_KEYNOTEXIST;
  return sm4(SES(hSessionHandle), k->key, uiAlgID, pucIV, pucEncData, uiEncDataLength, pucData, puiDataLength, 0);
}

EXPORT int SDF_HashInit(void *hSessionHandle, unsigned int uiAlgID, void *pucPublicKey, unsigned char *pucID,
                        unsigned int uiIDLength) {
  FAULT("SDF_HashInit");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (uiAlgID != SGD_SM3) return SDR_ALGNOTSUPPORT;
  if (EVP_DigestInit_ex(s->md, s->dev->sm3, NULL) != 1) return SDR_UNKNOWERR;
  s->hashing = 1;
  if (pucPublicKey && pucID && uiIDLength > 0) {
    if (uiIDLength > 8191) return SDR_INARGERR;
    const ECCrefPublicKey *pk = pucPublicKey;
    unsigned char za[32];
    if (!compute_za(s->dev, pk->x + ECCref_MAX_LEN - 32, pk->y + ECCref_MAX_LEN - 32, pucID, uiIDLength, za) ||
        EVP_DigestUpdate(s->md, za, 32) != 1)
      return SDR_UNKNOWERR;
  }
  return SDR_OK;
}

EXPORT int SDF_HashUpdate(void *hSessionHandle, unsigned char *pucData, unsigned int uiDataLength) {
  FAULT("SDF_HashUpdate");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!s->hashing) return SDR_STEPERR;
  if (!pucData || uiDataLength == 0) return SDR_INARGERR; /* strict: no empty updates (some libraries refuse them) */
  return EVP_DigestUpdate(s->md, pucData, uiDataLength) == 1 ? SDR_OK : SDR_UNKNOWERR;
}

EXPORT int SDF_HashFinal(void *hSessionHandle, unsigned char *pucHash, unsigned int *puiHashLength) {
  FAULT("SDF_HashFinal");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!s->hashing) return SDR_STEPERR;
  if (!pucHash || !puiHashLength) return SDR_INARGERR;
  s->hashing = 0;
  return EVP_DigestFinal_ex(s->md, pucHash, puiHashLength) == 1 ? SDR_OK : SDR_UNKNOWERR;
}

EXPORT int SDF_InternalSign_ECC(void *hSessionHandle, unsigned int uiISKIndex, unsigned char *pucData,
                                unsigned int uiDataLength, void *pucSignature) {
  FAULT("SDF_InternalSign_ECC");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucData || uiDataLength != 32 || !pucSignature) return SDR_INARGERR;
  if (uiISKIndex >= MAX_KEYS || !s->dev->sm2[uiISKIndex].pkey) return SDR_KEYNOTEXIST;
  if (s->dev->sm2[uiISKIndex].has_pin && !s->rights[uiISKIndex]) return SDR_PARDENY;
  /* the SM2 signature provider signs tbs as the digest e = SM3(ZA ‖ M) the caller computed */
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->dev->sm2[uiISKIndex].pkey, NULL);
  unsigned char der[80];
  size_t derLen = sizeof der;
  int rc = SDR_SIGNERR;
  if (ctx && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, der, &derLen, pucData, 32) == 1) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derLen);
    unsigned char r[32], sv[32];
    if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), r, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), sv, 32) == 32) {
      ECCSignature *out = pucSignature;
      put_field(out->r, r);
      put_field(out->s, sv);
      rc = SDR_OK;
    }
    ECDSA_SIG_free(sig);
  }
  EVP_PKEY_CTX_free(ctx);
  return rc;
}

EXPORT int SDF_InternalVerify_ECC(void *hSessionHandle, unsigned int uiIPKIndex, unsigned char *pucData,
                                  unsigned int uiDataLength, void *pucSignature) {
  FAULT("SDF_InternalVerify_ECC");
  CHECK_SESSION(hSessionHandle);
  Session *s = SES(hSessionHandle);
  if (!pucData || uiDataLength != 32 || !pucSignature) return SDR_INARGERR;
  if (uiIPKIndex >= MAX_KEYS || !s->dev->sm2[uiIPKIndex].pkey) return SDR_KEYNOTEXIST;
  const ECCSignature *in = pucSignature;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(in->r + ECCref_MAX_LEN - 32, 32, NULL), *sv = BN_bin2bn(in->s + ECCref_MAX_LEN - 32, 32, NULL);
  unsigned char *der = NULL;
  int derLen = 0, rc = SDR_VERIFYERR;
  if (sig && r && sv && ECDSA_SIG_set0(sig, r, sv) == 1) {
    r = sv = NULL; /* owned by sig now */
    derLen = i2d_ECDSA_SIG(sig, &der);
  }
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->dev->sm2[uiIPKIndex].pkey, NULL);
  if (derLen > 0 && ctx && EVP_PKEY_verify_init(ctx) == 1 &&
      EVP_PKEY_verify(ctx, der, (size_t)derLen, pucData, 32) == 1)
    rc = SDR_OK;
  EVP_PKEY_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  BN_free(r);
  BN_free(sv);
  return rc;
}
