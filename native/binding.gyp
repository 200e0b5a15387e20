{
  "target_defaults": {
    "include_dirs": ["<!@(node libtorch.mjs include)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
    "cflags": ["-fPIC"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "executor",
      "type": "static_library",
      "sources": ["executor.cc"]
    },
    {
      "target_name": "prunespace_torch",
      "sources": ["binding.cc"],
      "dependencies": ["executor"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "libraries": ["-L<!(node libtorch.mjs libdir)", "-Wl,-rpath,<!(node libtorch.mjs libdir)", "-Wl,--no-as-needed", "<!@(node libtorch.mjs libs)"]
    },
    {
      "target_name": "executor_test",
      "type": "executable",
      "sources": ["executor_test.cc"],
      "dependencies": ["executor"],
      "libraries": ["-L<!(node libtorch.mjs libdir)", "-Wl,-rpath,<!(node libtorch.mjs libdir)", "-Wl,--no-as-needed", "<!@(node libtorch.mjs libs)"]
    }
  ]
}
