/**
 * The blessed layout: throughput line chart, the running task's gauge, datastore usage, the rotation
 * table, the guest table and the log tail, placed by model.layout() for the terminal's size and rebuilt
 * on resize. In a tall terminal the guest table has a box of its own; otherwise it shares the table box
 * with the rotation table and `g` switches between the two. It only draws a DashboardView; it knows
 * nothing of HTTP.
 */
import blessed from 'blessed';
import contrib from 'blessed-contrib';
import type { Widgets } from 'blessed';
import { chartData, currentRate, fitLabel, layout, throughputLabel, type GaugeView, type Rect, type TableView, type ThroughputSeries } from './model.js';

export interface LogEntry {
  kind: 'task' | 'error' | 'info';
  text: string;
}

/** Everything on screen, already computed by the model. */
export interface DashboardView {
  series: ThroughputSeries;
  gauge: GaugeView;
  /** datastore lines for a given inner width and height */
  usage: (width: number, rows: number) => string[];
  usageLabel: string;
  /** the rotation table for a given inner width */
  table: (width: number) => TableView;
  tableLabel: string;
  /** rows the table has (the layout sizes it for them) */
  tableRows: number;
  /** the guest table (the overview's per-guest state) for a given inner width */
  guests: (width: number) => TableView;
  guestLabel: string;
  guestRows: number;
  log: LogEntry[];
  logLabel: string;
}

interface Parts {
  chart?: contrib.LineElement;
  gauge: contrib.GaugeElement;
  gaugeText: Widgets.BoxElement;
  usage?: Widgets.BoxElement;
  /** the shared table box: rotation, or the guests when `g` switched it */
  table?: contrib.TableElement;
  tableWidth: number;
  /** the guest table's own box (tall terminals) */
  guests?: contrib.TableElement;
  log: contrib.LogElement;
}

const BORDER = { type: 'line' as const };
const place = (r: Rect): Widgets.BoxOptions => ({ top: r.top, left: r.left, width: r.width, height: r.height });

export class DashboardScreen {
  readonly screen: Widgets.Screen;
  private widgets?: Parts;
  private view?: DashboardView;
  /** the shared table box shows the guests (`g` switches) */
  private showGuests = false;

  constructor(options: { title: string; onQuit: () => void }) {
    this.screen = blessed.screen({ smartCSR: true, title: options.title, fullUnicode: true, warnings: false, autoPadding: true });
    this.screen.key(['q', 'C-c'], () => options.onQuit());
    this.screen.key(['g'], () => {
      this.showGuests = !this.showGuests;
      this.build(); // the shared box is sized for the rows of the table it shows
      if (this.view) this.render(this.view);
    });
    this.screen.on('resize', () => {
      this.build();
      if (this.view) this.render(this.view);
    });
    this.build();
  }

  private build(): void {
    for (const child of [...this.screen.children]) child.destroy();
    const [width, height, v] = [Number(this.screen.width), Number(this.screen.height), this.view];
    let box = layout(width, height, v?.tableRows, v?.guestRows);
    if (!box.guests && this.showGuests) box = layout(width, height, v?.guestRows, v?.guestRows);
    let chart: contrib.LineElement | undefined;
    if (box.chart) {
      chart = contrib.line({
        ...place(box.chart),
        label: throughputLabel({ read: 0, write: 0 }, box.chart.width - 4, paint),
        border: BORDER,
        tags: true,
        style: { line: 'green', text: 'white', baseline: 'white', border: { fg: 'cyan' } },
        xLabelPadding: 10,
        xPadding: 12,
        numYLabels: 5,
        showLegend: false,
      });
      this.screen.append(chart);
    }
    const gauge = contrib.gauge({
      ...place(box.gauge),
      label: ' no task running ',
      border: BORDER,
      stroke: 'green',
      fill: 'white',
      style: { border: { fg: 'cyan' } },
    });
    this.screen.append(gauge);
    // the gauge draws its bar on rows 2-3; the two rows above carry bytes, elapsed time and ETA
    const gaugeText = blessed.box({ top: box.gauge.top + 1, left: box.gauge.left + 2, width: Math.max(1, box.gauge.width - 4), height: 2, content: '' });
    this.screen.append(gaugeText);
    let usage: Widgets.BoxElement | undefined;
    if (box.usage) {
      usage = blessed.box({ ...place(box.usage), label: ' datastores ', border: BORDER, style: { border: { fg: 'cyan' } } });
      this.screen.append(usage);
    }
    const tableWidth = (box.table?.width ?? 0) - 2;
    const table = box.table ? this.tableWidget(box.table, ' rotation ') : undefined;
    const guests = box.guests ? this.tableWidget(box.guests, ' guests ') : undefined;
    const log = contrib.log({ ...place(box.log), label: ' log ', border: BORDER, tags: true, bufferLength: 500, style: { border: { fg: 'cyan' } } });
    this.screen.append(log);
    this.widgets = { chart, gauge, gaugeText, usage, table, tableWidth, guests, log };
  }

  private tableWidget(rect: Rect, label: string): contrib.TableElement {
    const table = contrib.table({
      ...place(rect),
      label,
      border: BORDER,
      columnWidth: [6],
      columnSpacing: 2,
      interactive: false,
      fg: 'white',
      style: { border: { fg: 'cyan' } },
    });
    tightTable(table);
    this.screen.append(table);
    return table;
  }

  render(view: DashboardView): void {
    const rebuild = this.view?.tableRows !== view.tableRows || this.view?.guestRows !== view.guestRows;
    this.view = view;
    if (rebuild) this.build();
    const w = this.widgets;
    if (!w) return;
    if (w.chart) {
      const data = chartData(view.series);
      w.chart.options.maxY = data.maxY;
      w.chart.setLabel(throughputLabel(currentRate(view.series), Number(w.chart.width) - 4, paint));
      w.chart.setData([
        { title: 'read', x: data.x, y: data.read, style: { line: COLORS.read } },
        { title: 'write', x: data.x, y: data.write, style: { line: COLORS.write } },
      ]);
    }
    const gaugeWidth = Number(w.gauge.width) - 4;
    // without the chart, the rates go into the gauge's label
    const gaugeLabel = w.chart ? view.gauge.label : `${throughputLabel(currentRate(view.series), 0)}MiB/s |${view.gauge.label}`;
    w.gauge.setLabel(fitLabel(gaugeLabel, gaugeWidth));
    w.gauge.setPercent(view.gauge.percent / 100);
    w.gaugeText.setContent(view.gauge.lines.join('\n'));
    if (w.usage) {
      w.usage.setLabel(fitLabel(view.usageLabel, Number(w.usage.width) - 4));
      w.usage.setContent(view.usage(Number(w.usage.width) - 2, Number(w.usage.height) - 2).join('\n'));
    }
    if (w.guests) fillTable(w.guests, view.guests(Number(w.guests.width) - 2), view.guestLabel);
    if (w.table) {
      const guestsHere = this.showGuests && !w.guests;
      const keys = w.guests ? '(q quits)' : guestsHere ? '(q quits, g rotation)' : '(q quits, g guests)';
      const label = guestsHere ? view.guestLabel : view.tableLabel;
      fillTable(w.table, guestsHere ? view.guests(w.tableWidth) : view.table(w.tableWidth), `${label.trimEnd()}  ${keys} `);
    }
    w.log.setLabel(fitLabel(view.logLabel, Number(w.log.width) - 4));
    // the tail that fits (scrolling a freshly built list is unreliable before its first render)
    const lines = view.log.slice(-Math.max(1, Number(w.log.height) - 2)).map(formatEntry);
    w.log.setItems(lines);
    this.screen.render();
  }

  destroy(): void {
    this.screen.destroy();
  }
}

function fillTable(widget: contrib.TableElement, table: TableView, label: string): void {
  (widget as unknown as { options: { columnWidth: number[] } }).options.columnWidth = table.widths;
  widget.setLabel(fitLabel(label, Number(widget.width) - 4));
  widget.setData({ headers: table.headers, data: table.data });
}

const COLORS = { read: 'green', write: 'yellow' } as const;
const paint = (text: string, series: 'read' | 'write'): string => `{${COLORS[series]}-fg}${text}{/${COLORS[series]}-fg}`;

/**
 * blessed-contrib's table leaves a blank row under the headers and indents rows by one column; at 24
 * lines every row counts, so the rows start right under the headers, aligned with them.
 */
function tightTable(table: contrib.TableElement): void {
  const t = table as unknown as { rows: Widgets.ListElement; width: number; height: number; render: () => unknown };
  t.rows.top = 1;
  t.rows.left = 0;
  t.render = function render(this: typeof t) {
    this.rows.width = this.width - 2;
    this.rows.height = this.height - 3;
    return (blessed.box.prototype as unknown as { render: () => unknown }).render.call(this);
  };
}

function formatEntry(entry: LogEntry): string {
  const text = blessed.escape(entry.text);
  if (entry.kind === 'error') return `{red-fg}${text}{/red-fg}`;
  if (entry.kind === 'info') return `{cyan-fg}${text}{/cyan-fg}`;
  if (/^\S+ (WARN|ERROR):/.test(entry.text)) return `{yellow-fg}${text}{/yellow-fg}`;
  return text;
}
