import * as grpc from '@grpc/grpc-js';

/**
 * gRPC fixtures for tests: a plain grpc-js server on 127.0.0.1 with an ephemeral port, and JSON
 * service definitions so tests can talk gRPC without generated code. Deliberately independent of
 * @mstar/grpc, whose own tests use these fixtures.
 */

export type JsonMethodKind = 'unary' | 'serverStream' | 'clientStream' | 'bidi';

/**
 * A grpc-js ServiceDefinition whose messages travel as JSON: `methods` maps each method name (as
 * written in a .proto, e.g. `Echo`) to its kind. The implementation keys are the same names.
 */
export function jsonServiceDefinition(
  serviceName: string,
  methods: Record<string, JsonMethodKind>,
): grpc.ServiceDefinition {
  const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
  const deserialize = (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')) as unknown;
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [method, kind] of Object.entries(methods)) {
    definition[method] = {
      path: `/${serviceName}/${method}`,
      requestStream: kind === 'clientStream' || kind === 'bidi',
      responseStream: kind === 'serverStream' || kind === 'bidi',
      requestSerialize: serialize,
      requestDeserialize: deserialize,
      responseSerialize: serialize,
      responseDeserialize: deserialize,
    };
  }
  return definition;
}

export interface TestGrpcService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface TestGrpcServer {
  /** `127.0.0.1:<port>`, ready for a client. */
  address: string;
  port: number;
  server: grpc.Server;
  /** Stops the server at once, cancelling calls still open. Safe to call twice. */
  close(): Promise<void>;
}

export async function startTestGrpcServer(
  services: readonly TestGrpcService[],
  options: grpc.ServerOptions = {},
): Promise<TestGrpcServer> {
  const server = new grpc.Server(options);
  for (const { definition, implementation } of services) server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, boundPort) =>
      err ? reject(err) : resolve(boundPort),
    );
  });
  let closed = false;
  return {
    address: `127.0.0.1:${port}`,
    port,
    server,
    close() {
      if (!closed) {
        closed = true;
        // Tests want no lingering sockets and no waiting on calls the test abandoned.
        server.forceShutdown();
      }
      return Promise.resolve();
    },
  };
}

/** Runs `body` against a fresh server and always shuts it down afterwards, even when `body` throws. */
export async function withGrpcServer<T>(
  services: readonly TestGrpcService[],
  body: (server: TestGrpcServer) => Promise<T>,
  options: grpc.ServerOptions = {},
): Promise<T> {
  const server = await startTestGrpcServer(services, options);
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}
