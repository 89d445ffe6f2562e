'use strict';
// The command-line skeleton of the server CLIs (scripts/zk.js, scripts/etcd.js): parse
// `<command> [--options] [-- cmd args...]`, dispatch run/start/stop, stop servers by PID, and
// exit with the status a command resolved (its message on stderr, prefixed by who speaks,
// when it throws). Their `run` loop is run-command.js.
const { parseArgs } = require('node:util');

const { log } = require('../testing/processes');

/** A whole-number option: `fallback` when absent; throws `message` unless `ok(n)`. */
function intOption(value, fallback, ok, message) {
  const n = value !== undefined ? Number(value) : fallback;
  if (!Number.isInteger(n) || !ok(n)) throw new Error(`${message}, got ${value}`);
  return n;
}

/**
 * A server CLI. `usage`: its usage lines; `options`: parseArgs options beyond --help;
 * `parse(values)`: the checked option values to add to opts (throws on a bad one);
 * `commands`: { run(opts), start(opts), stop: the function stopping one PID }. Each command
 * gets opts { help, command, rest (positionals after the command), cmd (rest, then what follows
 * `--`), ...parse(values) } and resolves an exit status. Returns { main(argv), runIfMain(module) }.
 */
function serverCli({ who, usage: usageLines, options, parse, commands }) {
  const usage = () => ['usage:', ...usageLines.map((l) => `  ${l}`)].join('\n');

  function parseCli(argv) {
    const dashdash = argv.indexOf('--');
    const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
    const { values, positionals } = parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
    });
    const [command, ...rest] = positionals;
    const checked = parse(values);
    const cmd = dashdash >= 0 ? rest.concat(argv.slice(dashdash + 1)) : rest;
    return { help: values.help, command, ...checked, rest, cmd };
  }

  async function cliRun(opts) {
    if (opts.cmd.length === 0) throw new Error(`run: no command given\n${usage()}`);
    return commands.run(opts);
  }

  /** Stops each PID with commands.stop; status 1 if any of them failed. */
  async function cliStop(opts) {
    if (opts.rest.length === 0) throw new Error(`stop: no pid given\n${usage()}`);
    const pids = opts.rest.map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`stop: not a pid: ${p}`);
      return n;
    });
    let status = 0;
    const results = await Promise.allSettled(pids.map((pid) => commands.stop(pid)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        process.stderr.write(`${who}: ${r.reason.message}\n`);
        status = 1;
      } else {
        log(who, `stopped pid ${pids[i]}`);
      }
    });
    return status;
  }

  async function main(argv) {
    let opts;
    try {
      opts = parseCli(argv);
    } catch (err) {
      process.stderr.write(`${who}: ${err.message}\n${usage()}\n`);
      return 2;
    }
    if (opts.help || !opts.command) {
      process.stderr.write(usage() + '\n');
      return opts.help ? 0 : 2;
    }
    switch (opts.command) {
      case 'run':
        return cliRun(opts);
      case 'start':
        return commands.start(opts);
      case 'stop':
        return cliStop(opts);
      default:
        process.stderr.write(`${who}: unknown command ${opts.command}\n${usage()}\n`);
        return 2;
    }
  }

  /** Run main on this process's argv and exit with its status, when `mod` is the script run. */
  function runIfMain(mod) {
    if (require.main !== mod) return;
    main(process.argv.slice(2)).then(
      (code) => process.exit(code),
      (err) => {
        process.stderr.write(`${who}: ${process.env.ZKTX_DEBUG ? err.stack : err.message}\n`);
        process.exit(1);
      }
    );
  }

  return { main, usage, runIfMain };
}

module.exports = { serverCli, intOption };
