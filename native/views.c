/*
 * Typed-array views whose memory N-API's ArrayBuffer calls cannot reach: views over a
 * SharedArrayBuffer (the bodies a node receives, read in place by its check worker).
 * - viewAlignOffset(view, align): bytes to skip from the view's first byte so that it lies on an
 *   `align` boundary (O_DIRECT needs the buffer's address aligned).
 * - copyInto(target, offset, source): memcpy of `source` into `target` at `offset`; returns the bytes
 *   copied. V8 copies into a SharedArrayBuffer with a relaxed-atomic memmove that is several times
 *   slower than memcpy; a body of 4 MiB arrives in pieces of 16 KiB and each is copied once.
 */
#include <stdint.h>
#include <string.h>
#include "views.h"

static int view_info(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_view = false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset, count;
  void *p = NULL;
  if (napi_is_typedarray(env, value, &is_view) != napi_ok || !is_view) return -1;
  if (napi_get_typedarray_info(env, value, &type, &count, &p, &buffer, &offset) != napi_ok) return -1;
  if (type != napi_uint8_array || (p == NULL && count > 0)) return -1;
  *data = (uint8_t *)p;
  *length = count;
  return 0;
}

static napi_value view_align_offset(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  uint8_t *data;
  size_t length;
  int64_t align;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || view_info(env, argv[0], &data, &length) != 0 || napi_get_value_int64(env, argv[1], &align) != napi_ok || align <= 0 ||
      (align & (align - 1)) != 0) {
    napi_throw_type_error(env, NULL, "viewAlignOffset(uint8Array, powerOfTwo)");
    return NULL;
  }
  uintptr_t rest = (uintptr_t)data & (uintptr_t)(align - 1);
  napi_create_int64(env, rest == 0 ? 0 : (int64_t)(align - (int64_t)rest), &out);
  return out;
}

static napi_value copy_into(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uint8_t *target, *source;
  size_t target_length, source_length;
  int64_t offset;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || view_info(env, argv[0], &target, &target_length) != 0 || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      view_info(env, argv[2], &source, &source_length) != 0) {
    napi_throw_type_error(env, NULL, "copyInto(uint8Array, offset, uint8Array)");
    return NULL;
  }
  if (offset < 0 || (uint64_t)offset > target_length || source_length > target_length - (size_t)offset) {
    napi_throw_range_error(env, NULL, "copyInto: the source does not fit the target at that offset");
    return NULL;
  }
  if (source_length > 0) memmove(target + offset, source, source_length);
  napi_create_int64(env, (int64_t)source_length, &out);
  return out;
}

void register_views(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "viewAlignOffset", NAPI_AUTO_LENGTH, view_align_offset, NULL, &fn);
  napi_set_named_property(env, exports, "viewAlignOffset", fn);
  napi_create_function(env, "copyInto", NAPI_AUTO_LENGTH, copy_into, NULL, &fn);
  napi_set_named_property(env, exports, "copyInto", fn);
}
