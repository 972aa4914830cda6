{
  "targets": [
    {
      "target_name": "coldvault_native",
      "sources": ["native/sparse.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
