/**
 * tls: the certificate `coldvault serve` speaks HTTPS with, and that other nodes pin.
 *
 * Without `tls: {cert, key}` in the config, serve makes its own at first use: a self-signed ECDSA
 * P-256 certificate, valid 10 years, in `<stateDir>/tls/` (cert.pem and key.pem 0600, folder 0700),
 * made by the `openssl` command into a private temp folder that is then renamed into place, so the
 * pair is whole or absent (self-signed.ts, openssl.ts). It is never replaced by coldvault: other nodes
 * trust it by its SHA-256 fingerprint (`coldvault cert fingerprint`, `AB:CD:...` as PBS shows it), not
 * through a CA, so a damaged pair is a TLS_CERT_DAMAGED error naming the files and the way out.
 *
 * Why openssl, not an npm package: measured here (Node 20, OpenSSL 3.0, a loaded 2-core VM), spawning
 * `openssl req` for an ECDSA P-256 pair takes about 20 ms and adds nothing to the install; the npm
 * `selfsigned` 5 (on @peculiar/x509 and pkijs) adds 23 packages, 9.0 MB, 1 075 files, about 300 ms to
 * import and 80 ms to generate. Node 20 has no X.509 writer of its own. openssl is on every Debian and
 * Proxmox VE host (ca-certificates depends on it); where it is missing the error says so and names the
 * way around it (`tls: {cert, key}`). ECDSA P-256 rather than Ed25519: browsers (the web UI) do not
 * accept Ed25519 server certificates; rather than RSA: key generation takes 20x longer (430 ms).
 *
 * When serve uses it (listen.ts, tlsChoice): always with `tls: "auto"`; beyond loopback when `tls` is
 * not configured (unless allowInsecureListen); on loopback without `tls` serve speaks plain HTTP.
 */
export { checkPair, ensureSelfSigned, selfSignedFiles, TLS_DIR, type TlsFiles } from './self-signed.js';
export { certInfo, serveCertificate, type CertInfo, type ServeCertificate, type TlsSetting } from './serve-cert.js';
export { CERT_DAYS } from './openssl.js';
