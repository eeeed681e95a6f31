package dev.umawide.keycloak.claims;

import java.lang.reflect.Proxy;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/** Interface stubs by method name; an unexpected call throws, so tests see every interaction. */
final class Stubs {
    private Stubs() {
    }

    static <T> T stub(Class<T> type, Map<String, Function<Object[], Object>> methods) {
        Object proxy = Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (self, method, args) -> {
            Function<Object[], Object> h = methods.get(method.getName());
            if (h != null) {
                return h.apply(args);
            }
            switch (method.getName()) {
                case "hashCode":
                    return System.identityHashCode(self);
                case "equals":
                    return self == args[0];
                case "toString":
                    return type.getSimpleName() + " stub";
                default:
                    throw new UnsupportedOperationException(type.getSimpleName() + "." + method.getName());
            }
        });
        return type.cast(proxy);
    }

    static Map<String, Function<Object[], Object>> methods() {
        return new HashMap<>();
    }
}
