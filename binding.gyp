{
  "targets": [
    {
      "target_name": "coldvault_native",
      "sources": ["native/sparse.c", "native/extents.c", "native/seal.c", "native/views.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
