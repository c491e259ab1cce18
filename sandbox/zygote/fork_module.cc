// _mcpx_fork: the zygote's way into a session (jail/session_fork.h), as a CPython extension that
// sandbox/kernel/mcpx_zygote.py imports.
//
//   configure(plan: bytes) -> None      the server's SessionPlan (EncodeSessionPlan), once
//   enter_session(report, control, out, err, note, cgroup: tuple[int, ...]) -> None
//       in a child the zygote has just forked: returns only in the session's kernel, with every
//       layer of the session in place; anywhere else the process ends.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string_view>
#include <utility>

#include "jail/session_fork.h"

namespace {

using mcpx::jail::SessionFds;
using mcpx::jail::SessionPlan;

SessionPlan* g_plan = nullptr;  // the zygote's, for its lifetime

PyObject* Configure(PyObject*, PyObject* args) {
  const char* data = nullptr;
  Py_ssize_t len = 0;
  if (!PyArg_ParseTuple(args, "y#", &data, &len)) return nullptr;
  auto plan = mcpx::jail::DecodeSessionPlan(std::string_view(data, static_cast<size_t>(len)));
  if (!plan.ok()) {
    PyErr_SetString(PyExc_ValueError, plan.status().message().c_str());
    return nullptr;
  }
  delete g_plan;
  g_plan = new SessionPlan(std::move(plan).value());
  Py_RETURN_NONE;
}

PyObject* EnterSession(PyObject*, PyObject* args) {
  SessionFds fds;
  PyObject* cgroup = nullptr;
  if (!PyArg_ParseTuple(args, "iiiiiO!", &fds.report, &fds.control, &fds.out, &fds.err, &fds.note,
                        &PyTuple_Type, &cgroup)) {
    return nullptr;
  }
  if (g_plan == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "enter_session before configure");
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(cgroup); ++i) {
    const long fd = PyLong_AsLong(PyTuple_GET_ITEM(cgroup, i));
    if (fd == -1 && PyErr_Occurred()) return nullptr;
    fds.cgroup.push_back(static_cast<int>(fd));
  }
  // The forks below are the interpreter's, as os.fork's are: its locks are taken before and
  // renewed in the process that goes on running Python (the kernel), with the at-fork hooks
  // (`random` reseeds itself there).
  PyOS_BeforeFork();
  mcpx::jail::EnterSession(*g_plan, fds);
  PyOS_AfterFork_Child();
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"configure", Configure, METH_VARARGS, "Takes the session plan (JSON bytes) from the server."},
    {"enter_session", EnterSession, METH_VARARGS,
     "In a freshly forked child: becomes the session's kernel (returns) or ends."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT, "_mcpx_fork", nullptr, -1, kMethods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__mcpx_fork() { return PyModule_Create(&kModule); }
