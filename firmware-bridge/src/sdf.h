/*
 * GM/T 0018-2012 密码设备应用接口规范 (SDF) — the subset of the standard's header that ehc-edge uses,
 * written from the standard's own layout: types, #pragma pack(1) structs, algorithm identifiers
 * (GM/T 0006) and SDR_* return codes. Any conforming library (a vendor's, GmSSL's SoftSDF, our
 * softsdf) loads against it.
 *
 * ECCref_MAX_LEN is 64 in the standard (ECCref_MAX_BITS 512); some vendors build with 32. The addon
 * does not compile that in: it lays out ECC structs at run time from the quirk table's eccLen.
 * softsdf is built with the standard 64 and, for the quirk tests, with -DECCref_MAX_LEN=32.
 */
#ifndef EHC_SDF_H
#define EHC_SDF_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma pack(1)

typedef struct DeviceInfo_st {
  unsigned char IssuerName[40];
  unsigned char DeviceName[16];
  unsigned char DeviceSerial[16];
  unsigned int DeviceVersion;
  unsigned int StandardVersion;
  unsigned int AsymAlgAbility[2];
  unsigned int SymAlgAbility;
  unsigned int HashAlgAbility;
  unsigned int BufferSize;
} DEVICEINFO;

#ifndef ECCref_MAX_LEN
#define ECCref_MAX_BITS 512
#define ECCref_MAX_LEN ((ECCref_MAX_BITS + 7) / 8)
#endif

typedef struct ECCrefPublicKey_st {
  unsigned int bits;
  unsigned char x[ECCref_MAX_LEN];
  unsigned char y[ECCref_MAX_LEN];
} ECCrefPublicKey;

typedef struct ECCSignature_st {
  unsigned char r[ECCref_MAX_LEN];
  unsigned char s[ECCref_MAX_LEN];
} ECCSignature;

/* SM2 ciphertext (the digital envelope of SDF_ImportKeyWithISK_ECC): C1 = (x, y), C3 = M = SM3 hash,
 * C2 = C[L]. GM/T 0018-2012 declares C[1] and lets it run on for L bytes; some vendors fix C[136]. */
typedef struct ECCCipher_st {
  unsigned char x[ECCref_MAX_LEN];
  unsigned char y[ECCref_MAX_LEN];
  unsigned char M[32];
  unsigned int L;
  unsigned char C[1];
} ECCCipher;

#pragma pack()

/* algorithm identifiers (GM/T 0006) */
#define SGD_SM1_ECB 0x00000101
#define SGD_SM1_CBC 0x00000102
#define SGD_SM4_ECB 0x00000401
#define SGD_SM4_CBC 0x00000402
#define SGD_SM4_MAC 0x00000410
#define SGD_SM3 0x00000001
#define SGD_SHA256 0x00000004
/* GM/T 0006-2012 values; many older vendor headers shift these by one (SGD_SM2_1 0x00020100 …).
 * ehc-edge passes no SM2 algorithm ID to any call it makes, so only the quirk table's SM4/SM3 IDs matter. */
#define SGD_SM2 0x00020100
#define SGD_SM2_1 0x00020200 /* signature */
#define SGD_SM2_2 0x00020400 /* key exchange */
#define SGD_SM2_3 0x00020800 /* encryption */

/* return codes */
#define SDR_OK 0x0
#define SDR_BASE 0x01000000
#define SDR_UNKNOWERR (SDR_BASE + 0x00000001)
#define SDR_NOTSUPPORT (SDR_BASE + 0x00000002)
#define SDR_COMMFAIL (SDR_BASE + 0x00000003)
#define SDR_HARDFAIL (SDR_BASE + 0x00000004)
#define SDR_OPENDEVICE (SDR_BASE + 0x00000005)
#define SDR_OPENSESSION (SDR_BASE + 0x00000006)
#define SDR_PARDENY (SDR_BASE + 0x00000007)
#define SDR_KEYNOTEXIST (SDR_BASE + 0x00000008)
#define SDR_ALGNOTSUPPORT (SDR_BASE + 0x00000009)
#define SDR_ALGMODNOTSUPPORT (SDR_BASE + 0x0000000A)
#define SDR_PKOPERR (SDR_BASE + 0x0000000B)
#define SDR_SKOPERR (SDR_BASE + 0x0000000C)
#define SDR_SIGNERR (SDR_BASE + 0x0000000D)
#define SDR_VERIFYERR (SDR_BASE + 0x0000000E)
#define SDR_SYMOPERR (SDR_BASE + 0x0000000F)
#define SDR_STEPERR (SDR_BASE + 0x00000010)
#define SDR_FILESIZEERR (SDR_BASE + 0x00000011)
#define SDR_FILENOEXIST (SDR_BASE + 0x00000012)
#define SDR_FILEOFSERR (SDR_BASE + 0x00000013)
#define SDR_KEYTYPEERR (SDR_BASE + 0x00000014)
#define SDR_KEYERR (SDR_BASE + 0x00000015)
#define SDR_ENCDATAERR (SDR_BASE + 0x00000016)
#define SDR_RANDERR (SDR_BASE + 0x00000017)
#define SDR_PRKRERR (SDR_BASE + 0x00000018)
#define SDR_MACERR (SDR_BASE + 0x00000019)
#define SDR_FILEEXSITS (SDR_BASE + 0x0000001A)
#define SDR_FILEWERR (SDR_BASE + 0x0000001B)
#define SDR_NOBUFFER (SDR_BASE + 0x0000001C)
#define SDR_INARGERR (SDR_BASE + 0x0000001D)
#define SDR_OUTARGERR (SDR_BASE + 0x0000001E)

/* the functions ehc-edge binds (prototypes as in the standard; ECC structs passed as pointers) */
typedef int (*SDF_OpenDevice_fn)(void **phDeviceHandle);
typedef int (*SDF_CloseDevice_fn)(void *hDeviceHandle);
typedef int (*SDF_OpenSession_fn)(void *hDeviceHandle, void **phSessionHandle);
typedef int (*SDF_CloseSession_fn)(void *hSessionHandle);
typedef int (*SDF_GetDeviceInfo_fn)(void *hSessionHandle, DEVICEINFO *pstDeviceInfo);
typedef int (*SDF_GenerateRandom_fn)(void *hSessionHandle, unsigned int uiLength, unsigned char *pucRandom);
typedef int (*SDF_GetPrivateKeyAccessRight_fn)(void *hSessionHandle, unsigned int uiKeyIndex, unsigned char *pucPassword,
                                                unsigned int uiPwdLength);
typedef int (*SDF_ReleasePrivateKeyAccessRight_fn)(void *hSessionHandle, unsigned int uiKeyIndex);
typedef int (*SDF_ExportSignPublicKey_ECC_fn)(void *hSessionHandle, unsigned int uiKeyIndex, void *pucPublicKey);
typedef int (*SDF_ExportEncPublicKey_ECC_fn)(void *hSessionHandle, unsigned int uiKeyIndex, void *pucPublicKey);
typedef int (*SDF_GenerateKeyWithKEK_fn)(void *hSessionHandle, unsigned int uiKeyBits, unsigned int uiAlgID,
                                         unsigned int uiKEKIndex, unsigned char *pucKey, unsigned int *puiKeyLength,
                                         void **phKeyHandle);
typedef int (*SDF_ImportKeyWithISK_ECC_fn)(void *hSessionHandle, unsigned int uiISKIndex, void *pucKey,
                                           void **phKeyHandle);
typedef int (*SDF_ImportKeyWithKEK_fn)(void *hSessionHandle, unsigned int uiAlgID, unsigned int uiKEKIndex,
                                       unsigned char *pucKey, unsigned int uiKeyLength, void **phKeyHandle);
/* vendor extension (e.g. Sansec): a handle on a symmetric key stored at an internal index */
typedef int (*SDF_GetSymmKeyHandle_fn)(void *hSessionHandle, unsigned int uiKeyIndex, void **phKeyHandle);
typedef int (*SDF_DestroyKey_fn)(void *hSessionHandle, void *hKeyHandle);
typedef int (*SDF_InternalSign_ECC_fn)(void *hSessionHandle, unsigned int uiISKIndex, unsigned char *pucData,
                                       unsigned int uiDataLength, void *pucSignature);
typedef int (*SDF_InternalVerify_ECC_fn)(void *hSessionHandle, unsigned int uiIPKIndex, unsigned char *pucData,
                                         unsigned int uiDataLength, void *pucSignature);
typedef int (*SDF_Encrypt_fn)(void *hSessionHandle, void *hKeyHandle, unsigned int uiAlgID, unsigned char *pucIV,
                              unsigned char *pucData, unsigned int uiDataLength, unsigned char *pucEncData,
                              unsigned int *puiEncDataLength);
typedef int (*SDF_Decrypt_fn)(void *hSessionHandle, void *hKeyHandle, unsigned int uiAlgID, unsigned char *pucIV,
                              unsigned char *pucEncData, unsigned int uiEncDataLength, unsigned char *pucData,
                              unsigned int *puiDataLength);
typedef int (*SDF_HashInit_fn)(void *hSessionHandle, unsigned int uiAlgID, void *pucPublicKey, unsigned char *pucID,
                               unsigned int uiIDLength);
typedef int (*SDF_HashUpdate_fn)(void *hSessionHandle, unsigned char *pucData, unsigned int uiDataLength);
typedef int (*SDF_HashFinal_fn)(void *hSessionHandle, unsigned char *pucHash, unsigned int *puiHashLength);

#ifdef __cplusplus
}
#endif
#endif
