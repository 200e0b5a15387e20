{
  "targets": [
    {
      "target_name": "prunespace_torch",
      "sources": ["torch_engine.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(node libtorch.mjs include)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"],
      "libraries": ["-L<!(node libtorch.mjs libdir)", "-Wl,-rpath,<!(node libtorch.mjs libdir)", "-Wl,--no-as-needed", "<!@(node libtorch.mjs libs)"]
    }
  ]
}
