#ifndef COLDVAULT_VIEWS_H
#define COLDVAULT_VIEWS_H
#include <node_api.h>
void register_views(napi_env env, napi_value exports);
#endif
