/** Byte units and the size / rate / duration formats of vzdump's logs. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const UNITS: Array<[number, string]> = [
  [TiB, 'TiB'],
  [GiB, 'GiB'],
  [MiB, 'MiB'],
  [KiB, 'KiB'],
];

/** vzdump's render_bytes: `12.34 GiB` with the given decimals (sizes of `transferred`: 2, progress: 1). */
export function formatBytes(bytes: number, decimals = 2): string {
  for (const [size, unit] of UNITS) {
    if (bytes >= size) return `${(bytes / size).toFixed(decimals)} ${unit}`;
  }
  return `${bytes} B`;
}

/** MiB/s with one decimal, as vzdump prints rates. */
export function formatRate(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? bytes / seconds : bytes;
  return `${(rate / MiB).toFixed(1)} MiB/s`;
}

/** HH:MM:SS of a duration in seconds, as in `Finished Backup of VM 101 (00:00:25)`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Share of a whole in percent, no decimals; 0 for an empty whole. */
export function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}
