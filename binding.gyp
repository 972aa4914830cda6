{
  "targets": [
    {
      "target_name": "coldvault_native",
      "sources": ["native/sparse.c", "native/extents.c", "native/seal.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
