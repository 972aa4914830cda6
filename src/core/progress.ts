/**
 * Progress events of the backup, restore and verify flows. The engine emits them through a callback;
 * user interfaces (CLI progress bar, API, dashboard) subscribe. The engine never imports a UI.
 */
export interface TransferProgress {
  phase: 'backup' | 'restore' | 'verify';
  /** what is being transferred: a disk key like `scsi0`, or `chunks` for verify */
  item: string;
  totalBytes: number;
  /** bytes of the source processed so far (zero bytes included) */
  readBytes: number;
  /** bytes newly written to the datastore (backup) or to the target (restore), after compression */
  writtenBytes: number;
  /** all-zero bytes, elided */
  zeroBytes: number;
  /** bytes whose chunk already was in the store */
  dedupBytes: number;
  elapsedSeconds: number;
}

export type ProgressListener = (progress: TransferProgress) => void;
