/*
 * coldvault_native, part 3: the extent map of a file (ioctl FS_IOC_FIEMAP).
 * extents(fd, sync) returns [{logical, physical, length, flags}, ...] for the whole file, in logical
 * order, with the flags exactly as the kernel gives them (FIEMAP_EXTENT_*; the caller names them).
 * With `sync`, FIEMAP_FLAG_SYNC asks the filesystem to write the file's dirty data first, so that no
 * extent is still delayed-allocation. The kernel hands out a limited number of extents per call: the
 * map is read page by page, each call starting where the last extent of the previous one ended, until
 * an extent carries FIEMAP_EXTENT_LAST or a call maps nothing.
 * Errors are thrown as Error objects with `code` (the errno name, e.g. EOPNOTSUPP on a filesystem
 * without FIEMAP), `errno` and `syscall`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/fiemap.h>
#include <node_api.h>
#include "extents.h"

#define EXTENTS_PER_CALL 512

static napi_value throw_errno(napi_env env, int err) {
  napi_value msg, code, error, number;
  const char *name = strerrorname_np(err);
  char text[200];
  snprintf(text, sizeof text, "ioctl(FS_IOC_FIEMAP) failed: %s (%s)", strerror(err), name ? name : "?");
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_value syscall;
  napi_create_string_utf8(env, "ioctl(FS_IOC_FIEMAP)", NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  napi_throw(env, error);
  return NULL;
}

static int set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) != napi_ok) return -1;
  return napi_set_named_property(env, obj, key, v) == napi_ok ? 0 : -1;
}

static int push_extent(napi_env env, napi_value out, uint32_t n, const struct fiemap_extent *e) {
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return -1;
  if (set_number(env, obj, "logical", (double)e->fe_logical) || set_number(env, obj, "physical", (double)e->fe_physical) ||
      set_number(env, obj, "length", (double)e->fe_length) || set_number(env, obj, "flags", (double)e->fe_flags))
    return -1;
  return napi_set_element(env, out, n, obj) == napi_ok ? 0 : -1;
}

/* One FIEMAP call from `start` on; returns the number of extents mapped, or -errno. */
static int map_page(int fd, struct fiemap *fm, uint64_t start, int sync) {
  memset(fm, 0, sizeof *fm);
  fm->fm_start = start;
  fm->fm_length = FIEMAP_MAX_OFFSET - start;
  fm->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
  fm->fm_extent_count = EXTENTS_PER_CALL;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) return -errno;
  return (int)fm->fm_mapped_extents;
}

static napi_value extents(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd;
  bool sync = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &sync) != napi_ok) {
    napi_throw_type_error(env, NULL, "extents(fd, sync)");
    return NULL;
  }
  struct fiemap *fm = calloc(1, sizeof(struct fiemap) + EXTENTS_PER_CALL * sizeof(struct fiemap_extent));
  if (!fm) return throw_errno(env, ENOMEM);
  napi_create_array(env, &out);
  uint32_t n = 0;
  uint64_t start = 0;
  int last = 0, first = 1;
  while (!last) {
    int mapped = map_page(fd, fm, start, sync && first);
    first = 0;
    if (mapped < 0) {
      free(fm);
      return throw_errno(env, -mapped);
    }
    if (mapped == 0) break;
    for (int i = 0; i < mapped; i++) {
      const struct fiemap_extent *e = &fm->fm_extents[i];
      if (push_extent(env, out, n++, e)) {
        free(fm);
        return NULL;
      }
      if (e->fe_flags & FIEMAP_EXTENT_LAST) last = 1;
      start = e->fe_logical + e->fe_length;
    }
  }
  free(fm);
  return out;
}

void register_extents(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "extents", NAPI_AUTO_LENGTH, extents, NULL, &fn);
  napi_set_named_property(env, exports, "extents", fn);
}
