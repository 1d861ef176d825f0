// lint-as: cloud/src/bad.ts
// expect: cloud/ never imports desktop code
export * from '../../src-renderer/src/App.tsx';
