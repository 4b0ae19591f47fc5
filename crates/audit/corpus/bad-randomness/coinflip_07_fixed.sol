pragma solidity ^0.7.0;

// The flip is settled by the oracle's randomness.
contract CoinFlip {
    address public coordinator;
    address payable public player;

    constructor(address oracle) {
        coordinator = oracle;
    }

    receive() external payable {}

    function flip() external payable {
        require(msg.value == 0.01 ether, "stake");
        require(player == address(0), "busy");
        player = msg.sender;
    }

    function settle(uint256 randomness) external {
        require(msg.sender == coordinator, "coordinator");
        address payable p = player;
        player = address(0);
        if (randomness % 2 == 0) {
            p.transfer(0.02 ether);
        }
    }
}
