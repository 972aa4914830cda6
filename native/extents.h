/* The extent map of a file (native/extents.c), registered by the addon's init (native/sparse.c). */
#ifndef COLDVAULT_EXTENTS_H
#define COLDVAULT_EXTENTS_H
#include <node_api.h>
void register_extents(napi_env env, napi_value exports);
#endif
