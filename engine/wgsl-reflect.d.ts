// The package's "main" is a CommonJS file under "type": "module", so Node cannot load it; the ES
// module build is imported by path, with the package's own types.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
