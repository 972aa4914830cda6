/** The few blessed-contrib widgets the dashboard uses (the package ships no types). */
declare module 'blessed-contrib' {
  import type { Widgets } from 'blessed';

  namespace contrib {
    interface LineSeries {
      title: string;
      x: string[];
      y: number[];
      style?: { line?: string };
    }
    interface LineOptions extends Widgets.BoxOptions {
      style?: { line?: string; text?: string; baseline?: string; border?: Widgets.Types.TStyle['border'] };
      xLabelPadding?: number;
      xPadding?: number;
      numYLabels?: number;
      showLegend?: boolean;
      legend?: { width?: number };
      wholeNumbersOnly?: boolean;
      minY?: number;
      maxY?: number;
      showNthLabel?: number;
    }
    interface LineElement extends Widgets.BoxElement {
      options: LineOptions;
      setData(data: LineSeries[]): void;
    }
    interface GaugeOptions extends Widgets.BoxOptions {
      stroke?: string;
      fill?: string;
      percent?: number;
      showLabel?: boolean;
    }
    interface GaugeElement extends Widgets.BoxElement {
      /** 0..1 (values up to 1.001 are taken as a fraction) or a percentage above that */
      setPercent(percent: number): void;
    }
    interface TableOptions extends Widgets.BoxOptions {
      columnWidth: number[];
      columnSpacing?: number;
      interactive?: boolean;
      fg?: string;
    }
    interface TableElement extends Widgets.BoxElement {
      setData(data: { headers: string[]; data: string[][] }): void;
    }
    interface LogOptions extends Widgets.ListOptions<Widgets.ListElementStyle> {
      bufferLength?: number;
    }
    interface LogElement extends Widgets.ListElement {
      logLines: string[];
      log(line: string): void;
    }
  }

  const contrib: {
    line(options: contrib.LineOptions): contrib.LineElement;
    gauge(options: contrib.GaugeOptions): contrib.GaugeElement;
    table(options: contrib.TableOptions): contrib.TableElement;
    log(options: contrib.LogOptions): contrib.LogElement;
  };
  export = contrib;
}
