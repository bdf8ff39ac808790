{
  # Two targets: the addon, and the drop generator used by tests and the bench.
  # Both are built by `npm install` (node-gyp rebuild), so nothing else needs a compiler step.
  "variables": { "rxtrace_portable%": 0 },
  "targets": [
    {
      "target_name": "rxtrace",
      "sources": [
        "native/addon.cc",
        "native/perf_session.cc",
        "native/errors.cc",
        "native/perf_counters.cc",
        "native/counters_addon.cc",
        "native/sock_diag.cc",
        "native/sock_diag_js.cc",
        "native/tracefs_mount.cc",
        "native/fd_scan.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-fstack-protector-strong", "-fvisibility=hidden", "-fexceptions"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/perf_session.cc", "native/perf_counters.cc", "native/sock_diag.cc", "native/tracefs_mount.cc", "native/fd_scan.cc"] }],
        # Release builds for prebuilds/ (scripts/ship/prebuild.sh passes -Drxtrace_portable=1):
        # libstdc++ and libgcc linked in, and glibc symbols pinned to old versions, so one binary
        # loads on glibc 2.28 hosts (RHEL 8, Debian 10, Ubuntu 20.04). See native/glibc-compat.cc.
        ["rxtrace_portable==1", {
          "sources": ["native/glibc-compat.cc"],
          "ldflags": ["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL"]
        }]
      ]
    },
    {
      "target_name": "rxflood",
      "type": "executable",
      "sources": ["scripts/rxflood.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
