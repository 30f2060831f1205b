export * from './upstream.ts';
export * from './dialect.ts';
export * from './envelope.ts';
export * from './http-upstream.ts';
export * from './ids.ts';
