// Creates (or updates) a SASL/SCRAM user on a running broker through the
// Admin API: both SCRAM-SHA-256 and SCRAM-SHA-512 credentials. Run by
// `scripts/stack up` with Java's single-file source launcher:
//   WORDSTREAM_SCRAM_PASSWORD=... java -cp '<kafka lib>/*' ScramUser.java BOOTSTRAP USER
// The password comes from the environment so it is not on a command line.
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: ScramUser BOOTSTRAP USER (password in WORDSTREAM_SCRAM_PASSWORD)");
            System.exit(2);
        }
        String password = System.getenv("WORDSTREAM_SCRAM_PASSWORD");
        if (password == null || password.isEmpty()) {
            System.err.println("WORDSTREAM_SCRAM_PASSWORD is not set");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            // one mechanism per request: a user may be altered once per request
            for (ScramMechanism m : List.of(ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)) {
                admin.alterUserScramCredentials(List.of(
                        new UserScramCredentialUpsertion(args[1], new ScramCredentialInfo(m, 8192), password)))
                        .all().get(60, TimeUnit.SECONDS);
            }
        }
        System.out.println("SCRAM credentials of user " + args[1] + " set");
    }
}
