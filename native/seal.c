/*
 * AES-256-GCM into the caller's buffer (native/seal.c): sealInto / openInto for encrypted chunk
 * blobs (src/format/encrypted-blob.ts). node:crypto answers every update with a new Buffer, so each
 * 4 MiB chunk left megabytes of garbage and page faults; OpenSSL itself can write in place. The
 * OpenSSL is Node's own (its symbols are in the node binary, its headers in Node's include folder),
 * so the addon links nothing of its own and uses the same AES-NI code paths as node:crypto.
 *
 * sealInto(key32, nonce12, aad, input, output, tag16): output (as long as input; may be input) gets
 * the ciphertext, tag16 the GCM tag. openInto(key32, nonce12, aad, input, output, tag16) -> boolean:
 * false when the tag does not authenticate (output then holds unauthenticated bytes: the caller
 * discards them). Every argument a Uint8Array (a Buffer is one).
 */
#include <string.h>
#include <node_api.h>
#include <openssl/evp.h>
#include "seal.h"

typedef struct {
  uint8_t *data;
  size_t length;
} bytes_t;

static int bytes_of(napi_env env, napi_value v, bytes_t *out) {
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array) return -1;
  out->data = data;
  out->length = length;
  return 0;
}

static int read_args(napi_env env, napi_callback_info info, bytes_t a[6]) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) return -1;
  for (int i = 0; i < 6; i++)
    if (bytes_of(env, argv[i], &a[i])) return -1;
  if (a[0].length != 32 || a[1].length != 12 || a[5].length != 16 || a[4].length < a[3].length) return -1;
  if (a[3].length > 0x7fffffff || a[2].length > 0x7fffffff) return -1;
  return 0;
}

/* One GCM pass: enc 1 seals, 0 opens; returns 1 on success, 0 when the tag fails, -1 on an OpenSSL error. */
static int gcm(bytes_t a[6], int enc) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, ok = -1;
  if (!ctx) return -1;
  if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1) goto done;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1) goto done;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, a[0].data, a[1].data, enc) != 1) goto done;
  if (a[2].length > 0 && EVP_CipherUpdate(ctx, NULL, &n, a[2].data, (int)a[2].length) != 1) goto done;
  if (a[3].length > 0 && EVP_CipherUpdate(ctx, a[4].data, &n, a[3].data, (int)a[3].length) != 1) goto done;
  if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, a[5].data) != 1) goto done;
  if (EVP_CipherFinal_ex(ctx, a[4].data + a[3].length, &n) != 1) {
    ok = enc ? -1 : 0;
    goto done;
  }
  if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, a[5].data) != 1) goto done;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

static napi_value run(napi_env env, napi_callback_info info, int enc) {
  bytes_t a[6];
  napi_value out;
  if (read_args(env, info, a)) {
    napi_throw_type_error(env, NULL, enc ? "sealInto(key32, nonce12, aad, input, output, tag16)" : "openInto(key32, nonce12, aad, input, output, tag16)");
    return NULL;
  }
  int r = gcm(a, enc);
  if (r < 0) {
    napi_throw_error(env, "ESEAL", "AES-256-GCM failed in OpenSSL");
    return NULL;
  }
  napi_get_boolean(env, r == 1, &out);
  return out;
}

static napi_value seal_into(napi_env env, napi_callback_info info) { return run(env, info, 1); }
static napi_value open_into(napi_env env, napi_callback_info info) { return run(env, info, 0); }

void register_seal(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sealInto", NAPI_AUTO_LENGTH, seal_into, NULL, &fn);
  napi_set_named_property(env, exports, "sealInto", fn);
  napi_create_function(env, "openInto", NAPI_AUTO_LENGTH, open_into, NULL, &fn);
  napi_set_named_property(env, exports, "openInto", fn);
}
