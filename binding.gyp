{
  "targets": [
    {
      "target_name": "coldvault_native",
      "sources": ["native/sparse.c", "native/extents.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
