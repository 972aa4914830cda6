// TEST ONLY: a preload (`node --import test/helpers/shifted-clock.mjs ...`) that shifts the process's
// wall clock so that it starts at CV_TEST_NOW (ISO 8601) and runs on from there: `new Date()` and
// `Date.now()` answer real time + (CV_TEST_NOW - the real time at start). Dates built from a value are
// left alone. The overview tests use it to make backups, job runs and their tasks on past days with
// the real CLI, so the store holds weeks of history made by the engine itself (nothing in the
// product reads a fake clock). Worker threads inherit the preload (Node passes execArgv on).
const target = Date.parse(process.env.CV_TEST_NOW ?? '');
if (Number.isNaN(target)) throw new Error(`shifted-clock.mjs: CV_TEST_NOW is not a time: '${process.env.CV_TEST_NOW}'`);
const RealDate = Date;
const offset = target - RealDate.now();

class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }

  static now() {
    return RealDate.now() + offset;
  }
}

globalThis.Date = ShiftedDate;
