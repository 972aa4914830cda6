/**
 * Proxmox property strings (`virtio=AA:BB:..,bridge=vmbr0`, `local:101/x.raw,size=4G`), split the way
 * pve-common's parse_property_string splits them: on ',', each part `key=value` or a bare value for the
 * schema's default key. Parts keep their order so a rewrite can change one part and leave the rest.
 */

export interface PropertyPart {
  /** null for a bare value (the default key). */
  readonly key: string | null;
  readonly value: string;
}

/** Splits a property string; returns an error text for parts Proxmox refuses (`k=`, `=v`). */
export function splitPropertyString(text: string): PropertyPart[] | string {
  const parts: PropertyPart[] = [];
  for (const part of text.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/.exec(part);
    if (kv) parts.push({ key: kv[1] ?? '', value: kv[2] ?? '' });
    else if (!part.includes('=')) parts.push({ key: null, value: part });
    else return `missing key or value in '${part}'`;
  }
  return parts;
}

export function joinPropertyString(parts: readonly PropertyPart[]): string {
  return parts.map((p) => (p.key === null ? p.value : `${p.key}=${p.value}`)).join(',');
}

/** Proxmox booleans: 1/on/yes/true and 0/off/no/false (any case); undefined when not one of them. */
export function parseBoolean(value: string): boolean | undefined {
  if (/^(1|on|yes|true)$/i.test(value)) return true;
  if (/^(0|off|no|false)$/i.test(value)) return false;
  return undefined;
}
