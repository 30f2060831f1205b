/**
 * HMAC-SM3 with a card-held key. GM/T 0018 has no HMAC with an internal key, and the key must not
 * leave the card, so every card (SoftCard and SdfCard alike, for the same answers) MACs with a key
 * DERIVED from the card's mac key:
 *   K_hmac = SM4-ECB(K_mac, MAC_KEY_LABEL)     (two blocks → 32 bytes)
 *   mac    = HMAC-SM3(K_hmac, data)
 * SM4 under a secret key is a PRF, so K_hmac is as unpredictable as K_mac; only K_hmac sits in process
 * memory (derived once per process), K_mac stays in the card. Use the mac key index for nothing else.
 */
export const MAC_KEY_LABEL = Buffer.from('ehc-edge HMAC-SM3 key derivation', 'ascii');
if (MAC_KEY_LABEL.length !== 32) throw new Error('MAC_KEY_LABEL must be two SM4 blocks');
