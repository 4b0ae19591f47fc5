pragma solidity ^0.4.24;

// The last investor wins the pot if nobody invests for an hour; the miner sets the clock.
contract LastInvestor {
    address public lastInvestor;
    uint256 public lastInvestment;

    function invest() public payable {
        require(msg.value >= 1 ether);
        lastInvestor = msg.sender;
        lastInvestment = now;
    }

    function claim() public {
        require(now > lastInvestment + 1 hours); // expect: time-manipulation
        lastInvestor.transfer(this.balance);
    }
}
