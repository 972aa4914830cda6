/** A one-line progress bar on stderr when it is a TTY; log lines clear it before they print. */
import { formatBytes, formatRate, type LogLine, type LogSink, percent, type TransferProgress } from '../core/index.js';

export class ProgressBar {
  private shown = false;
  readonly enabled = process.stderr.isTTY === true;

  update(p: TransferProgress): void {
    if (!this.enabled) return;
    const width = 24;
    const done = Math.min(width, Math.round((p.readBytes / Math.max(1, p.totalBytes)) * width));
    const bar = `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
    const line =
      `${p.phase} ${p.item} ${bar} ${percent(p.readBytes, p.totalBytes)}% ${formatBytes(p.readBytes, 1)}/${formatBytes(p.totalBytes, 1)} ` +
      `${formatRate(p.readBytes, p.elapsedSeconds)} written ${formatBytes(p.writtenBytes, 1)} zero ${percent(p.zeroBytes, p.readBytes)}% dedup ${percent(p.dedupBytes, p.readBytes)}%`;
    process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
  }

  /** A log sink that prints `LEVEL: message` lines to stderr (as vzdump does), around the bar. */
  sink(quiet = false): LogSink {
    return (line: LogLine) => {
      if (quiet && line.level === 'INFO') return;
      this.clear();
      process.stderr.write(`${line.level}: ${line.message}\n`);
    };
  }
}
