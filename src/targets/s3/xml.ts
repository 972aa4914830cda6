/**
 * The few pieces of S3's XML answers the client reads: the text of flat elements (an error's Code and
 * Message, a listing's Contents entries and their Key, Size, LastModified, ETag). S3's answers are
 * flat and machine-made, so elements are found by name, not parsed into a tree; entities are decoded.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

/** The raw inner text of every `<tag>...</tag>` in `xml`, in order (elements of that name must not nest). */
export function xmlElements(xml: string, tag: string): string[] {
  const found: string[] = [];
  const open = new RegExp(`<${tag}(\\s[^>]*)?>`, 'g');
  const close = `</${tag}>`;
  for (let m = open.exec(xml); m !== null; m = open.exec(xml)) {
    const start = m.index + m[0].length;
    const end = xml.indexOf(close, start);
    if (end < 0) break;
    found.push(xml.slice(start, end));
    open.lastIndex = end + close.length;
  }
  return found;
}

/** The decoded text of the first `<tag>` in `xml`, or undefined. */
export function xmlValue(xml: string, tag: string): string | undefined {
  const [first] = xmlElements(xml, tag);
  return first === undefined ? undefined : decodeXmlText(first);
}

/** `<Tag>text</Tag>` with the text escaped, for the few request bodies the client sends. */
export function xmlElement(tag: string, text: string): string {
  const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<${tag}>${escaped}</${tag}>`;
}
