pragma solidity ^0.5.0;

// The state update hides in a modifier that runs after the function body.
contract RewardPool {
    mapping(address => uint256) public rewards;
    uint256 public paidOut;

    modifier recordPayout(uint256 amount) {
        _;
        paidOut += amount;
        rewards[msg.sender] = 0;
    }

    function fund(address who) public payable {
        rewards[who] = rewards[who] + msg.value;
    }

    function claim() public recordPayout(rewards[msg.sender]) {
        (bool ok, ) = msg.sender.call.value(rewards[msg.sender])(""); // expect: reentrancy
        require(ok);
    }
}
