/** Description text: Proxmox stores it as `#` lines, percent-escaped (PVE::Tools encode_text/decode_text). */

const decoder = new TextDecoder('utf-8');

/** `%XX` -> byte, then the bytes read as UTF-8 (invalid sequences become U+FFFD, as Perl's decode does). */
export function decodeText(text: string): string {
  if (!text.includes('%')) return text;
  const bytes = Buffer.from(text, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 ? bytes.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(bytes[i] ?? 0);
    }
  }
  return decoder.decode(Uint8Array.from(out));
}
