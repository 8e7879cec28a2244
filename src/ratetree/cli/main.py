"""The ``ratetree`` command (also ``python -m ratetree``): check, explain, simulate and
flatten a LiteLLM config before deploying it."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, TextIO

import yaml

from ratetree import __version__
from ratetree.buildinfo import BUILD, COMPILED
from ratetree.cli.check import render_tree, root_groups, warnings
from ratetree.cli.config_file import SECTION, ConfigFile, read_config
from ratetree.cli.flatten import flat_model_list, flatten_warnings
from ratetree.cli.report import as_csv, as_json, check_plot, plot, table
from ratetree.cli.simulate import (
    MAX_SPAN,
    Arrival,
    poisson_arrivals,
    read_trace,
    simulate,
    uniform_arrivals,
)
from ratetree.clocks import VirtualClock
from ratetree.core.build import Tree
from ratetree.core.validate import clip, show
from ratetree.errors import ConfigError, RatetreeError
from ratetree.scheduler import Scheduler

OK, INVALID, USAGE = 0, 1, 2

EPILOG = """\
CONFIG is a LiteLLM proxy config.yaml (model_list, router_settings.routing_strategy,
router_settings.model_group_alias) or a YAML file holding just a model_list.

exit status:
  0  success (check: the config is valid; warnings do not change this)
  1  the config is invalid: bad YAML, or a ConfigError (the message says where)
  2  usage error: bad arguments, a file that cannot be read, an unknown group,
     a bad trace file, a token count no path can hold, a simulated span over the
     limit, or a --plot FILE that cannot be written (no matplotlib, not
     .png/.svg/.pdf, no such folder)
Any other failure is a bug in ratetree and prints a traceback.
"""


class _Usage(RatetreeError):
    """A usage error found after parsing; the CLI prints it and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: errors here are meant to be read at a glance.
        self.exit(USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _number(minimum: float, strict: bool, maximum: float = math.inf) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite number above (``strict``) or at ``minimum``,
    and at most ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{show(text)} is not a number") from None
        if not value < float("inf") or value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"{show(text)} must be a finite number {bound}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{show(text)} must be at most {maximum:g}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ratetree",
        description="Check, explain, simulate and flatten a LiteLLM config whose model "
        "groups contain other groups.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ratetree {__version__} ({BUILD})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    check = command("check", "validate a config and print its group tree with warnings")
    check.add_argument("config", metavar="CONFIG")

    explain = command("explain", "what a request to GROUP would do on a fresh start, and why")
    explain.add_argument("config", metavar="CONFIG")
    explain.add_argument("group", metavar="GROUP")
    explain.add_argument("--tokens", type=_number(0, False), default=0.0, metavar="N")

    sim = command("simulate", "run virtual-time traffic through a config (no sleeping)")
    sim.add_argument(
        "config", metavar="CONFIG", nargs="?", help="default: the packaged example config"
    )
    sim.add_argument(
        "--group",
        action="append",
        metavar="G",
        help="group to send to (repeatable); default: every group that no other group "
        "includes; with --trace, the trace rows to keep",
    )
    source = sim.add_mutually_exclusive_group()
    source.add_argument(
        "--rps",
        type=_number(0, True),
        default=1.0,
        metavar="R",
        help="requests per second (default 1)",
    )
    source.add_argument(
        "--trace", metavar="FILE", help="CSV rows time,group[,tokens] (seconds from the start)"
    )
    sim.add_argument(
        "--arrivals",
        choices=("poisson", "uniform"),
        default="poisson",
        help="arrival process at --rps (default poisson)",
    )
    sim.add_argument(
        "--duration",
        type=_number(0, True, MAX_SPAN),
        metavar="S",
        help=f"seconds of traffic (default 300, or the whole trace; at most {MAX_SPAN:g})",
    )
    sim.add_argument(
        "--tokens",
        type=_number(0, False),
        default=1000.0,
        metavar="N",
        help="tokens per request (default 1000)",
    )
    sim.add_argument(
        "--latency",
        type=_number(0, False),
        default=0.0,
        metavar="S",
        help="seconds each admitted request holds its lease (default 0)",
    )
    sim.add_argument("--seed", type=int, default=0, metavar="K", help="(default 0)")
    sim.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sim.add_argument(
        "--plot",
        metavar="FILE",
        help="draw admitted requests per minute and each rpm ceiling to a .png, .svg or "
        ".pdf (needs ratetree[plot]; checked before the run)",
    )

    flatten = command("flatten", "write the equivalent flat model_list plain LiteLLM accepts")
    flatten.add_argument("config", metavar="CONFIG")
    flatten.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    return parser


def _scheduler(config: ConfigFile, seed: int = 0) -> tuple[Scheduler, VirtualClock]:
    clock = VirtualClock()
    return Scheduler(config.spec(), clock=clock, rng=random.Random(seed)), clock


def _known(scheduler: Scheduler, config: ConfigFile, groups: Sequence[str]) -> None:
    """Raise _Usage for the first of ``groups`` that no group, alias or wildcard takes."""
    spec = scheduler.spec
    tree = Tree(spec)
    for group in groups:
        if tree.lookup(group) is None:
            aliases = f"; aliases: {', '.join(spec.aliases)}" if spec.aliases else ""
            raise _Usage(
                f"unknown group {show(group)} in {config.name} "
                f"(groups: {', '.join(scheduler.groups)}{aliases})"
            )


def _check(args: argparse.Namespace, out: TextIO, err: TextIO, environ: Mapping[str, str]) -> int:
    config = read_config(args.config, environ)
    spec = config.spec()
    counts = [
        (len(spec.groups), "group", "groups"),
        (len(spec.deployments), "deployment", "deployments"),
        (len(spec.aliases), "alias", "aliases"),
    ]
    named = ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)
    print(f"{config.name}: valid: {named}", file=out)
    print(render_tree(spec), file=out)
    for warning in warnings(config, spec):
        print(f"warning: {warning}", file=err)
    return OK


def _explain(args: argparse.Namespace, out: TextIO, environ: Mapping[str, str]) -> int:
    config = read_config(args.config, environ)
    scheduler, _ = _scheduler(config)
    _known(scheduler, config, [args.group])
    print(scheduler.explain(args.group, tokens=args.tokens), file=out)
    return OK


def _arrivals(
    args: argparse.Namespace, scheduler: Scheduler
) -> tuple[list[Arrival], float, list[str], str]:
    """The requests to simulate, the duration, the groups asked and a description."""
    if args.trace is not None:
        with open(args.trace, encoding="utf-8") as file:
            arrivals = read_trace(file, args.trace, args.tokens)
        if args.duration is not None:
            arrivals = [a for a in arrivals if a.time < args.duration]
        if args.group:
            arrivals = [a for a in arrivals if a.group in args.group]
        duration = args.duration or max((a.time for a in arrivals), default=0.0)
        groups = list(dict.fromkeys(a.group for a in arrivals))
        if not arrivals:
            raise _Usage(f"no requests to simulate in trace {args.trace}")
        return arrivals, duration, groups, f"trace {args.trace}"
    duration = args.duration or 300.0
    groups = args.group or root_groups(scheduler.spec)
    if not groups:
        raise _Usage("no groups to send requests to: the model_list is empty")
    arrivals = list(
        poisson_arrivals(args.rps, duration, groups, args.tokens, random.Random(args.seed))
        if args.arrivals == "poisson"
        else uniform_arrivals(args.rps, duration, groups, args.tokens)
    )
    source = f"{args.arrivals} arrivals at {args.rps:g} rps, {args.tokens:g} tokens each"
    return arrivals, duration, groups, source


def _simulate(
    args: argparse.Namespace, out: TextIO, err: TextIO, environ: Mapping[str, str]
) -> int:
    if args.plot is not None:
        try:
            check_plot(args.plot)  # before the run: a long one should not end in this error
        except ImportError:
            raise _Usage("--plot needs matplotlib: pip install 'ratetree[plot]'") from None
    config = read_config(args.config, environ)
    # The scheduler draws from its own generator, so the arrivals do not shift with it.
    scheduler, clock = _scheduler(config, args.seed + 1)
    arrivals, duration, groups, source = _arrivals(args, scheduler)
    _known(scheduler, config, groups)

    progress = None
    if err.isatty():

        def progress(now: float) -> None:
            done = now / duration if duration else 1.0
            err.write(f"\rsimulating: {done:4.0%} of {duration:g} s")
            err.flush()

    result = simulate(
        scheduler, clock, arrivals, duration=duration, latency=args.latency, progress=progress
    )
    if progress is not None:
        err.write("\r" + " " * 40 + "\r")
    title = (
        f"ratetree simulate {config.name}: {', '.join(groups)}; {source}; "
        f"{duration:g} s, latency {args.latency:g} s, seed {args.seed}; {BUILD}"
    )
    if args.format == "json":
        run = {k: v for k, v in vars(args).items() if k not in ("command", "format", "plot")}
        run.update(config=config.name, groups=groups, duration=duration, compiled=COMPILED)
        print(as_json(result, run), file=out)
    elif args.format == "csv":
        out.write(as_csv(result, title))
    else:
        print(table(result, title), file=out)
    if args.plot is not None:
        plot(result, args.plot, title)
    return OK


def _flatten(args: argparse.Namespace, out: TextIO, err: TextIO, environ: Mapping[str, str]) -> int:
    config = read_config(args.config, environ)
    spec = config.spec()
    flat = flat_model_list(spec)
    document = (
        flat
        if isinstance(config.document, list)
        else {**{k: v for k, v in config.document.items() if k != SECTION}, "model_list": flat}
    )
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if args.output is None:
        out.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    for warning in flatten_warnings(config, spec):
        print(f"warning: {warning}", file=err)
    return OK


def _silence(out: TextIO) -> None:
    """Point ``out``'s file descriptor at /dev/null, so that flushing it at exit does not
    raise BrokenPipeError again (the recipe in Python's signal module docs)."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture buffer)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.
    ``os.environ/NAME`` values in configs are read from ``environ`` (default os.environ).

    Every expected error is printed as one line on stderr; see EPILOG for the statuses.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    environ = os.environ if environ is None else environ
    try:
        if args.command == "check":
            return _check(args, out, err, environ)
        if args.command == "explain":
            return _explain(args, out, environ)
        if args.command == "simulate":
            return _simulate(args, out, err, environ)
        return _flatten(args, out, err, environ)
    except BrokenPipeError:
        # The reader went away (``ratetree simulate | head -1``): what it wanted it got.
        _silence(out)
        return OK
    except ConfigError as error:
        _report(args.command, str(error), err)
        return INVALID
    except RatetreeError as error:  # _Usage, TraceError, UnknownGroup, InvalidRequest
        _report(args.command, str(error), err)
        return USAGE
    except OSError as error:
        _report(args.command, f"cannot open {error.filename}: {error.strerror}", err)
        return USAGE
    except KeyboardInterrupt:
        print(f"ratetree {args.command}: interrupted", file=err)
        return 130  # what a shell reports for a process ended by SIGINT


#: The longest error line printed; values in messages are cut much shorter already.
LONGEST_ERROR = 1000


def _report(command: str, message: str, err: TextIO) -> None:
    """Print an expected error as one line. Anything ratetree did not raise on purpose is a
    bug and is not caught, so it shows its traceback."""
    print(clip(f"ratetree {command}: {' '.join(message.splitlines())}", LONGEST_ERROR), file=err)
