/*
 * coldvault_native: the things Node cannot do itself.
 * 1. lseek(SEEK_DATA / SEEK_HOLE):
 * dataChunks(fd, size, chunkSize) returns [first, end, first, end, ...]: the ranges of chunk
 * indexes that hold any allocated data; chunks outside them are holes (all zero) and need not be read.
 * On a filesystem without SEEK_DATA support, Linux reports the whole file as data: a safe answer.
 * 2. The memory address of an ArrayBuffer, modulo an alignment: alignOffset(arrayBuffer, align) is
 * how many bytes to skip so that a view starts on an `align` boundary, as O_DIRECT writes need.
 * 3. The extent map of a file (ioctl FS_IOC_FIEMAP): extents(fd, sync), in native/extents.c.
 * 4. AES-256-GCM in place (sealInto / openInto), in native/seal.c.
 * 5. Views over a SharedArrayBuffer: their alignment and a memcpy into them, in native/views.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "extents.h"
#include "seal.h"
#include "views.h"

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "ESPARSE", msg);
  return NULL;
}

static int push(napi_env env, napi_value out, uint32_t *n, int64_t value) {
  napi_value v;
  if (napi_create_int64(env, value, &v) != napi_ok) return -1;
  return napi_set_element(env, out, (*n)++, v) == napi_ok ? 0 : -1;
}

static napi_value data_chunks(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  int32_t fd;
  int64_t size, chunk;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok ||
      napi_get_value_int64(env, argv[2], &chunk) != napi_ok || chunk <= 0) {
    napi_throw_type_error(env, NULL, "dataChunks(fd, size, chunkSize)");
    return NULL;
  }
  napi_create_array(env, &out);
  uint32_t n = 0;
  int64_t pos = 0, last_end = -1;
  while (pos < size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      return fail(env, "lseek(SEEK_DATA)", errno);
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return fail(env, "lseek(SEEK_HOLE)", errno);
    if (hole > size) hole = size;
    int64_t first = data / chunk, end = (hole + chunk - 1) / chunk;
    if (first <= last_end && n >= 2) { /* touches the previous range: extend it */
      napi_value v;
      napi_create_int64(env, end, &v);
      napi_set_element(env, out, n - 1, v);
    } else if (push(env, out, &n, first) || push(env, out, &n, end)) {
      return NULL;
    }
    last_end = end;
    pos = hole;
  }
  return out;
}

static napi_value align_offset(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *data = NULL;
  size_t length = 0;
  int64_t align;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_arraybuffer_info(env, argv[0], &data, &length) != napi_ok ||
      napi_get_value_int64(env, argv[1], &align) != napi_ok || align <= 0 || (align & (align - 1)) != 0) {
    napi_throw_type_error(env, NULL, "alignOffset(arrayBuffer, powerOfTwo)");
    return NULL;
  }
  uintptr_t rest = (uintptr_t)data & (uintptr_t)(align - 1);
  napi_create_int64(env, rest == 0 ? 0 : (int64_t)(align - (int64_t)rest), &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dataChunks", NAPI_AUTO_LENGTH, data_chunks, NULL, &fn);
  napi_set_named_property(env, exports, "dataChunks", fn);
  napi_create_function(env, "alignOffset", NAPI_AUTO_LENGTH, align_offset, NULL, &fn);
  napi_set_named_property(env, exports, "alignOffset", fn);
  register_extents(env, exports);
  register_seal(env, exports);
  register_views(env, exports);
  return exports;
}
