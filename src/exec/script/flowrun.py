"""The job flowrun runs this script for, read from the JSON file `FLOWRUN_JOB` names.

    import flowrun
    job = flowrun.job()
    job.input[0], job.input.reads, job.output[0], job.params.factor, job.wildcards.sample,
    job.threads, job.resources.mem_mb, job.log[0], job.rule, job.label

To run the script by hand (an IDE, a debugger), take the environment of one job from
`flowrun --job-env LABEL WORKFLOW`. Shipped with flowrun; only the standard library is used.
"""

import json
import os

__all__ = ["job", "Job", "Files"]


class Files(list):
    """Paths in declaration order; `files.name` is the first path named `name`."""

    def __init__(self, paths, names):
        super().__init__(paths)
        self._names = names

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._names[name][0]
        except KeyError:
            known = ", ".join(self._names) or "the files are not named"
            raise AttributeError(f"no file named {name!r}; names: {known}") from None

    def named(self, name):
        """Every path named `name`."""
        return list(self._names.get(name, []))


class Fields(dict):
    """A dict whose keys are also attributes: `job.params.factor`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no {name!r}; there are: {', '.join(self) or 'none'}") from None


class Job:
    """One job: its files, wildcards, params, threads and resources."""

    def __init__(self, data):
        self.rule = data["rule"]
        self.label = data["label"]
        named = data.get("named", {})
        for kind in ("input", "output", "log"):
            setattr(self, kind, Files(data[kind], named.get(kind, {})))
        self.wildcards = Fields(data["wildcards"])
        self.params = Fields(data["params"])
        self.threads = data["threads"]
        self.resources = Fields(data["resources"])

    def __repr__(self):
        return f"<flowrun job {self.label}>"


def job(path=None):
    """The job of this run: from `path`, else the file the `FLOWRUN_JOB` variable names."""
    path = path or os.environ.get("FLOWRUN_JOB")
    if not path:
        raise RuntimeError(
            "FLOWRUN_JOB is not set: flowrun sets it when it runs this script; to run it by "
            "hand, set it with `eval \"$(flowrun --job-env LABEL WORKFLOW)\"`")
    with open(path, encoding="utf-8") as f:
        return Job(json.load(f))
