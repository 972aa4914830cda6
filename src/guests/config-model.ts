/**
 * The parsed shape of a Proxmox guest config. Every line of the file is kept (text and order), so that
 * printing gives the file back byte for byte; on top of the lines each section carries the effective
 * key/values and the description, read the way Proxmox's parse_vm_config reads them.
 */

/** main: the guest itself; pending: `[PENDING]`; special: `[special:cloudinit|fleecing]`;
 * snapshot: `[name]`; unknown: any other `[..]` (skipped by Proxmox with a warning). */
export type SectionKind = 'main' | 'pending' | 'special' | 'snapshot' | 'unknown';

interface LineBase {
  /** 1-based line number in the parsed text. */
  readonly lineNo: number;
  /** The line exactly as written (without its '\n'). */
  readonly text: string;
}

export interface BlankLine extends LineBase {
  readonly kind: 'blank';
}

/** `#text`: a description line; `comment` is the percent-decoded text. */
export interface DescriptionLine extends LineBase {
  readonly kind: 'description';
  readonly comment: string;
}

/** `[name]`: opens a section. */
export interface HeaderLine extends LineBase {
  readonly kind: 'header';
}

/** `key: value` (value trimmed as Proxmox trims it; `key` as written, so `cdrom` stays `cdrom`). */
export interface PropertyLine extends LineBase {
  readonly kind: 'property';
  readonly key: string;
  readonly value: string;
}

/** A line of a section Proxmox skips (unknown section): kept for printing, never interpreted. */
export interface IgnoredLine extends LineBase {
  readonly kind: 'ignored';
}

export type ConfigLine = BlankLine | DescriptionLine | HeaderLine | PropertyLine | IgnoredLine;

export interface ConfigSection {
  readonly kind: SectionKind;
  /** '' for main; 'pending'; 'cloudinit' / 'fleecing' for special sections; the snapshot name;
   * the text between the brackets for unknown sections. */
  readonly name: string;
  /** All lines of the section in file order; the header line first (main has none). */
  readonly lines: readonly ConfigLine[];
  /** Effective key/values: a later duplicate key wins, `cdrom` is stored as `ide2` (as Proxmox does). */
  readonly values: ReadonlyMap<string, string>;
  /** The description: decoded `#` lines and `description:` values, joined by '\n'. */
  readonly description: string;
  /** True when Proxmox ignores this section: unknown sections, and earlier copies of a duplicated one. */
  readonly skipped: boolean;
}

export interface GuestConfig {
  /** In file order; sections[0] is the main section. */
  readonly sections: readonly ConfigSection[];
  /** Whether the text ended with '\n'. */
  readonly finalNewline: boolean;
  /** What Proxmox would warn about (unknown or duplicate sections, unknown keys) and lines over 1 MiB, each naming the line. */
  readonly warnings: readonly string[];
}
