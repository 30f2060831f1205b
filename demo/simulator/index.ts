export * from './server.ts';
export * from './card-system.ts';
export * from './population.ts';
