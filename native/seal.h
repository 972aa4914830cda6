#ifndef COLDVAULT_SEAL_H
#define COLDVAULT_SEAL_H
#include <node_api.h>
void register_seal(napi_env env, napi_value exports);
#endif
